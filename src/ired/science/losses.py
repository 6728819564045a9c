"""Training objectives: the loss of one training step, assembled in :func:`training_loss`.

loss_total = L_denoise + w * L_contrastive + energy_reg * mean(E_pos^2 + E_neg^2)

Denoising (all objectives): L_denoise = mean over samples and coordinates of (grad_y E(x, y_t, t) - eps)^2.

Contrastive terms on d = E_pos - E_neg (per sample), one entry each in :data:`CONTRASTIVE_TERMS`:

- ``softplus`` (IRED): softplus(d / T). dL/dd = sigmoid(d / T) / T, largest value 1 / T.
- ``cd`` (contrastive divergence sign): d. dL/dd = 1 everywhere: it never saturates, and it is unbounded below.
- ``hinge``: relu(margin + d). dL/dd = 1 while the margin is violated, 0 once E_neg >= E_pos + margin.

``frac_sat`` is the share of (windowed) samples whose contrastive-loss gradient dL/dd is below
``sat_threshold`` (1% by default) of its largest value: those samples teach the energy landscape nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ired.core.run_config import ObjectiveConfig
from ired.science.diffusion import Schedule
from ired.science.models import EnergyGrad, EnergyMLP, autograd_energy_grad
from ired.science.negatives import NegativeSampler


@dataclass
class ContrastiveOutput:
    loss: torch.Tensor  # scalar, unweighted contrastive loss over the windowed samples
    frac_sat: float
    margin: float  # mean(E_neg - E_pos) over the windowed samples
    n_active: int


@dataclass(frozen=True)
class ContrastiveTerm:
    """One contrastive objective on d = E_pos - E_neg.

    ``per_sample(d, temperature, margin)`` returns the loss of each sample and its gradient dL/dd divided by the
    largest value dL/dd can take (1 where the sample still teaches, near 0 where it is saturated).
    ``temperature``: the term uses ``objective.temperature`` (logged as the `temperature` column and adapted by
    ``objective.adaptive_temperature``).
    """

    per_sample: Callable[[torch.Tensor, float, float], tuple[torch.Tensor, torch.Tensor]]
    temperature: bool = False


def _softplus(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return F.softplus(diff / temperature), torch.sigmoid(diff.detach() / temperature)  # dL/dd over its max 1/T


def _cd(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return diff, torch.ones_like(diff)


def _hinge(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return F.relu(margin + diff), (margin + diff.detach() > 0).float()


CONTRASTIVE_TERMS: dict[str, ContrastiveTerm] = {
    "softplus": ContrastiveTerm(_softplus, temperature=True),
    "cd": ContrastiveTerm(_cd),
    "hinge": ContrastiveTerm(_hinge),
}
"""The contrastive term of each objective of ``ired.core.run_config.CONTRASTIVE_OBJECTIVES`` (the same names)."""


def uses_temperature(objective: str) -> bool:
    """Does the objective's contrastive term have a temperature (logged, adapted)?"""
    term = CONTRASTIVE_TERMS.get(objective)
    return term is not None and term.temperature


@dataclass(frozen=True)
class Shaping:
    """The contrastive term's settings at one optimiser step (``ired.science.schedules.ContrastiveController.at``)."""

    weight: float  # w of loss_total; 0 before objective.start_step and for `denoise`
    temperature: float
    margin: float


def denoise_loss(pred_eps: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample denoising MSE, shape (B,)."""
    return (pred_eps - eps).pow(2).mean(-1)


def timestep_window(cfg: ObjectiveConfig, t: torch.Tensor) -> torch.Tensor:
    """Boolean mask (B,) of samples whose t lies in [t_min, t_max]."""
    mask = t >= cfg.t_min
    if cfg.t_max is not None:
        mask &= t <= cfg.t_max
    return mask


def contrastive_loss(
    cfg: ObjectiveConfig,
    e_pos: torch.Tensor,
    e_neg: torch.Tensor,
    t: torch.Tensor,
    temperature: float | None = None,
    margin: float | None = None,
) -> ContrastiveOutput:
    """The contrastive term of ``cfg.name`` over the samples in the timestep window.

    ``temperature`` and ``margin`` override the config's values (set by ``ired.science.schedules``).
    """
    term = CONTRASTIVE_TERMS.get(cfg.name)
    if term is None:
        raise ValueError(f"objective.name={cfg.name!r} has no contrastive term")
    margin = cfg.margin if margin is None else margin
    T = cfg.temperature if temperature is None else temperature
    mask = timestep_window(cfg, t)
    n_active = int(mask.sum())
    if n_active == 0:
        zero = e_pos.sum() * 0.0
        return ContrastiveOutput(zero, float("nan"), float("nan"), 0)
    diff = (e_pos - e_neg)[mask]  # (B_active,)
    per_sample, relative_grad = term.per_sample(diff, T, margin)
    frac_sat = float((relative_grad < cfg.sat_threshold).float().mean())
    return ContrastiveOutput(per_sample.mean(), frac_sat, float((-diff.detach()).mean()), n_active)


def energy_scale_penalty(e_pos: torch.Tensor, e_neg: torch.Tensor | None) -> torch.Tensor:
    """mean(E_pos^2 + E_neg^2): keeps energies O(1) so the contrastive term cannot win by inflating the scale."""
    penalty = e_pos.pow(2).mean()
    if e_neg is not None:
        penalty = penalty + e_neg.pow(2).mean()
    return penalty


@dataclass
class TrainingLoss:
    """The loss of one (micro-)batch: ``total`` keeps its graph to the weights; ``stats`` are the training columns
    of the metrics contract it determines (``None`` where a term does not apply)."""

    total: torch.Tensor
    stats: dict[str, float | None]


def training_loss(
    model: EnergyMLP,
    schedule: Schedule,
    objective: ObjectiveConfig,
    x: torch.Tensor,
    y0: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    shaping: Shaping,
    sampler: NegativeSampler | None = None,
    eps_contrastive: torch.Tensor | None = None,
    energy_grad: EnergyGrad | None = None,
) -> TrainingLoss:
    """Denoising + contrastive + regulariser for problems ``x`` (B, d) with targets ``y0`` at levels ``t``.

    ``eps`` noises the denoising term's y_t. A contrastive objective draws negatives from ``sampler``; with
    ``objective.contrastive_noise=fresh`` its positives and negatives use their own noise ``eps_contrastive``,
    with ``shared`` (``eps_contrastive`` None) the denoising term's y_t and energy. ``energy_grad`` computes E and
    grad_y E with a graph to the weights (``ired.training.kernel``; default: autograd with a double backward).
    """
    cond = model.condition(x, t)
    e_pos, pred = (energy_grad or autograd_energy_grad)(model, cond, schedule.q_sample(y0, t, eps))  # (B,), (B, d)
    l_denoise = denoise_loss(pred, eps).mean()
    loss = l_denoise
    stats: dict[str, float | None] = {
        "train_denoise_mse": float(l_denoise.detach()),
        "E_pos": float(e_pos.detach().mean()),
        "gradE_norm": float(pred.detach().norm(dim=-1).mean()),
        "pred_mean": float(pred.detach().mean()),
        "pred_std": float(pred.detach().std()),
        "target_mean": float(eps.mean()),
        "target_std": float(eps.std()),
    }
    e_neg = None
    if objective.contrastive:
        if sampler is None:
            raise ValueError(f"objective.name={objective.name!r} needs a negative sampler")
        if eps_contrastive is None:  # objective.contrastive_noise=shared: reuse the denoising term's y_t
            eps_contrastive = eps
        else:  # fresh (the reference): positives y+_t and negatives from their own noise
            e_pos = model.energy(cond, schedule.q_sample(y0, t, eps_contrastive))
            stats["E_pos"] = float(e_pos.detach().mean())
        y_neg = sampler.sample(model, schedule, cond.detach(), y0, t, eps_contrastive)
        e_neg = model.energy(cond, y_neg)
        out = contrastive_loss(objective, e_pos, e_neg, t, temperature=shaping.temperature, margin=shaping.margin)
        loss = loss + shaping.weight * out.loss
        stats.update(
            loss_contrastive=float(out.loss.detach()) if out.n_active else None,
            E_neg=float(e_neg.detach().mean()),
            margin=out.margin if out.n_active else None,
            frac_sat=out.frac_sat if out.n_active else None,
        )
    if objective.energy_reg > 0:
        loss = loss + objective.energy_reg * energy_scale_penalty(e_pos, e_neg)
    stats["loss_total"] = float(loss.detach())
    return TrainingLoss(loss, stats)
