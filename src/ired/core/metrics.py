"""The metrics contract: every logged column, its name and its definition, in one place.

The same names are used by the trainer, metrics.jsonl, the summary table and the plot axes.
"""

from __future__ import annotations

TRAIN_DEFINITIONS: dict[str, str] = {
    "step": "Optimiser steps completed when the row was written.",
    "train_denoise_mse": "Training denoising loss: mean over the log interval of mean_{samples, coords} "
    "(grad_y E(x, y_t, t) - eps)^2, t uniform on 0..T-1, on the training batches (noise space, not task space).",
    "loss_total": "train_denoise_mse + w * loss_contrastive + energy_reg * mean(E_pos^2 + E_neg^2) "
    "(w: the contrastive weight at that step), mean over the log interval.",
    "loss_contrastive": "Unweighted contrastive loss over the samples in the timestep window, mean over the log "
    "interval; null for objective=denoise.",
    "E_pos": "Mean energy of the positives: for contrastive objectives the contrastive term's positives "
    "y+_t = q_sample(y, t, eps2) (objective.contrastive_noise=fresh; with `shared`, the denoising term's own y_t), "
    "for denoise the denoising term's y_t.",
    "E_neg": "Mean energy of the negatives (same x, t and noise as the positives); null for objective=denoise.",
    "margin": "Mean of E_neg - E_pos over the windowed samples; null for objective=denoise.",
    "frac_sat": "Share of windowed samples whose contrastive-loss gradient dL/d(E_pos - E_neg) is below "
    "objective.sat_threshold (default 1%) of its largest value; null for objective=denoise.",
    "gradE_norm": "Mean per-sample L2 norm of grad_y E(x, y_t, t), the predicted noise.",
    "pred_mean": "Mean of the predicted noise grad_y E over all samples and coordinates.",
    "pred_std": "Standard deviation of the predicted noise grad_y E over all samples and coordinates.",
    "target_mean": "Mean of the target noise eps.",
    "target_std": "Standard deviation of the target noise eps (about 1).",
    "contrastive_weight": "Weight w of the contrastive term at the step (after start_step and warm-up); 0 for denoise.",
    "temperature": "Temperature of the `softplus` term at the step (changes only with adaptive_temperature); "
    "null for other objectives.",
    "lr": "Learning rate of the step.",
    "grad_norm": "Global L2 norm of the parameter gradient before clipping, mean over the log interval.",
    "sec_per_step": "Wall seconds per optimiser step, mean over the log interval.",
}

_EVAL_BASE: dict[str, str] = {
    "val_task_mse": "Task metric: element-wise MSE between the `current` protocol's predicted A^-1 and the true "
    "A^-1, raw units, mean over the fixed `val` split (A = 2RR^T + 0.5I).",
    "val_harder_task_mse": "Same task metric on the fixed `val_harder` split (A = 2RR^T + 0.1I).",
    "val_denoise_mse": "The `denoise` protocol on `val`: (grad_y E - eps)^2 with seeded t (cycling over levels) "
    "and eps, held-out problems: the training loss's definition on validation data.",
    "train_task_mse": "The task metric on the fixed `train_subset` split: fresh draws from the training "
    "distribution that the model never trained on (training data is drawn online), so it equals val_task_mse up "
    "to sampling noise by construction; a check of the evaluation, not a train/val gap.",
    "train_batch_task_mse": "The task metric on problems the model trained on: the first "
    "min(batch_size, data.train_subset_size, train.eval_size) problems of the training batch of the step just "
    "taken (the IRED reference's '(Train)' number is this last training batch); can differ from val_task_mse "
    "when the model fits the batches it sees.",
}

WEIGHTS_SUFFIX = {"ema": "", "raw": "_raw"}

EVAL_DEFINITIONS: dict[str, str] = {}
for _name, _text in _EVAL_BASE.items():
    EVAL_DEFINITIONS[_name] = _text + " EMA weights."
    EVAL_DEFINITIONS[_name + "_raw"] = _text + " Raw (non-EMA) weights."

TRAIN_COLUMNS: tuple[str, ...] = tuple(TRAIN_DEFINITIONS)
EVAL_COLUMNS: tuple[str, ...] = tuple(EVAL_DEFINITIONS)
ALL_COLUMNS: tuple[str, ...] = TRAIN_COLUMNS + EVAL_COLUMNS
DEFINITIONS: dict[str, str] = {**TRAIN_DEFINITIONS, **EVAL_DEFINITIONS}


def contract_text() -> str:
    """Human-readable metrics contract, printed at step 0 of every run."""
    width = max(map(len, DEFINITIONS))
    lines = ["metrics contract (metrics.jsonl columns):"]
    lines += [f"  {name:<{width}}  {text}" for name, text in DEFINITIONS.items()]
    return "\n".join(lines)
