"""Evaluate a checkpoint file: rebuild the model from the file alone, pick EMA or raw weights, run a protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ired.checkpoint import load_checkpoint
from ired.config import RunConfig, build_config
from ired.data import SPLITS, make_split, trivial_baselines
from ired.diffusion import Schedule
from ired.errors import ConfigError
from ired.models import EnergyMLP
from ired.protocols import get_protocol
from ired.train import build_model, resolve_device

WEIGHTS = ("ema", "raw")


def split_size(cfg: RunConfig, split: str) -> int:
    return {"train_subset": cfg.data.train_subset_size, "val": cfg.data.val_size,
            "val_harder": cfg.data.val_harder_size}[split]


def load_energy_model(
    path: str | Path, weights: str = "ema", device: str = "auto"
) -> tuple[EnergyMLP, RunConfig, dict[str, Any]]:
    """The energy model stored in a checkpoint, with its config and the raw checkpoint dict."""
    if weights not in WEIGHTS:
        raise ConfigError(f"--weights {weights!r} not allowed (allowed: {', '.join(WEIGHTS)})")
    state = load_checkpoint(path)
    cfg = build_config(state["config"], source=f"{path} (embedded config)")
    model = build_model(cfg)
    model.load_state_dict(state["model" if weights == "raw" else "ema"])
    model.requires_grad_(False)
    return model.to(resolve_device(device)), cfg, state


def evaluate_checkpoint(
    path: str | Path,
    protocol: str,
    split: str,
    weights: str = "ema",
    size: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """One evaluation row: checkpoint x protocol x split x weights (format in docs/ARCHITECTURE.md)."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r} not allowed (allowed: {', '.join(SPLITS)})")
    proto = get_protocol(protocol)
    model, cfg, state = load_energy_model(path, weights, device)
    dev = next(model.parameters()).device
    n_total = split_size(cfg, split)
    problems = make_split(split, cfg.data.n, n_total, cfg.data.eval_seed)
    if size is not None:
        problems = problems.slice(0, size)
    schedule = Schedule(cfg.diffusion.steps, cfg.diffusion.cosine_s).to(dev)
    result = proto.run(model, schedule, problems, cfg, dev)
    baselines = trivial_baselines(split, cfg.data.n, n_total, cfg.data.eval_seed) if size is None else {}
    if size is not None:
        target = problems.A_inv
        from ired.data import mean_inverse

        baselines = {"predict_zero_mse": float(target.pow(2).mean()),
                     "predict_mean_mse": float((target - mean_inverse(cfg.data.n, cfg.data.eval_seed)).pow(2).mean())}
    return {
        "checkpoint": str(path),
        "run": cfg.name,
        "step": int(state["step"]),
        "code_version": state.get("code_version"),
        "protocol": proto.name,
        "protocol_version": proto.version,
        "split": split,
        "weights": weights,
        "n_problems": len(problems),
        **result,
        **baselines,
    }


INFERENCE_STEPS = (1, 5, 10, 20)


def inference_sweep(
    path: str | Path,
    steps: tuple[int, ...] = INFERENCE_STEPS,
    split: str = "val",
    weights: str = "ema",
    size: int | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Is the landscape well shaped? Task MSE, rejected-step share and energy monotonicity per inner-step count.

    For each K in ``steps`` the `current` protocol runs with K gradient steps per level. ``rejected_frac`` is the
    share of proposed steps that raised the energy (and were undone); ``energy_monotone_frac`` is the share of
    level-to-level transitions where the t=0 energy of the running x0 estimate did not rise.
    """
    from ired.protocols import current_settings, run_inference

    model, cfg, state = load_energy_model(path, weights, device)
    dev = next(model.parameters()).device
    problems = make_split(split, cfg.data.n, split_size(cfg, split), cfg.data.eval_seed)
    if size is not None:
        problems = problems.slice(0, size)
    schedule = Schedule(cfg.diffusion.steps, cfg.diffusion.cosine_s).to(dev)
    rows = []
    for k in steps:
        result = run_inference(
            model, schedule, problems, current_settings(cfg, steps_per_level=k), cfg.inference.seed,
            cfg.inference.batch_size, dev, track_energy=True,
        )
        rows.append({"checkpoint": str(path), "run": cfg.name, "step": int(state["step"]), "split": split,
                     "weights": weights, "steps_per_level": k, "n_problems": len(problems), **result})
    return rows
