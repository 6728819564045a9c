"""Evaluate a checkpoint file: rebuild the model from the file alone, pick EMA or raw weights, run a protocol."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ired.core.config_io import build_config
from ired.core.errors import ConfigError
from ired.core.host import keep_freed_memory
from ired.evaluation.protocols import current_settings, get_protocol, run_inference
from ired.runs.atomic import write_text_atomic
from ired.runs.checkpoint import load_checkpoint
from ired.science.data import SPLITS, baseline_mses, make_split
from ired.science.device import resolve_device
from ired.science.diffusion import Schedule
from ired.science.models import EnergyMLP, build_model, count_parameters

WEIGHTS = ("ema", "raw")


def _nulled(value: Any, key: str, bad: list[str]) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN); their keys go to ``bad``."""
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(key)
        return None
    if isinstance(value, dict):
        return {k: _nulled(v, f"{key}.{k}" if key else str(k), bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulled(v, f"{key}[{i}]", bad) for i, v in enumerate(value)]
    return value


def with_status(row: dict[str, Any], weights_problem: str | None = None) -> dict[str, Any]:
    """A result row that is valid JSON: non-finite numbers become null, and ``status`` says why.

    ``status`` is ``ok``, or ``non_finite`` with ``status_detail`` naming the null keys (and the checkpoint's
    non-finite weights, when that is the cause).
    """
    bad: list[str] = []
    clean = _nulled(row, "", bad)
    if not bad and weights_problem is None:
        return {**clean, "status": "ok"}
    detail = "; ".join(
        p for p in (weights_problem, f"non-finite results set to null: {', '.join(bad)}" if bad else None) if p
    )
    return {**clean, "status": "non_finite", "status_detail": detail}


def dumps(row: Any) -> str:
    """JSON text of a result (refuses NaN/inf instead of writing invalid JSON)."""
    return json.dumps(row, indent=1, allow_nan=False)


class CheckpointEvaluator:
    """One checkpoint loaded once, evaluated under any protocol x split x weights (rows as in ARCHITECTURE.md)."""

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        self.path = str(path)
        self.state = load_checkpoint(path)
        self.cfg = build_config(self.state["config"], source=f"{path} (embedded config)")
        self.device = resolve_device(device)
        keep_freed_memory()  # each inference chunk reuses the memory the last one freed (ired.core.host)
        self.schedule = Schedule(self.cfg.diffusion.steps, self.cfg.diffusion.cosine_s).to(self.device)
        self._models: dict[str, EnergyMLP] = {}

    def model(self, weights: str) -> EnergyMLP:
        if weights not in WEIGHTS:
            raise ConfigError(f"weights {weights!r} not allowed (allowed: {', '.join(WEIGHTS)})")
        if weights not in self._models:
            model = build_model(self.cfg)
            model.load_state_dict(self.state["model" if weights == "raw" else "ema"])
            self._models[weights] = model.requires_grad_(False).to(self.device)
        return self._models[weights]

    def weights_problem(self, weights: str) -> str | None:
        """Why the chosen weights cannot give a number (they hold NaN/inf), or None."""
        model = self.model(weights)
        bad = sum(int((~torch.isfinite(p)).sum()) for p in model.parameters())
        if not bad:
            return None
        return f"the {weights} weights of {self.path} hold {bad} non-finite values (of {count_parameters(model)})"

    def evaluate(self, protocol: str, split: str, weights: str = "ema", size: int | None = None) -> dict[str, Any]:
        if split not in SPLITS:
            raise ConfigError(f"split {split!r} not allowed (allowed: {', '.join(SPLITS)})")
        proto = get_protocol(protocol)
        problems = make_split(split, self.cfg.data.n, self.cfg.data.split_size(split), self.cfg.data.eval_seed)
        if size is not None:
            problems = problems.slice(0, size)
        result = proto.run(self.model(weights), self.schedule, problems, self.cfg, self.device)
        return with_status({
            "checkpoint": self.path,
            "run": self.cfg.name,
            "step": int(self.state["step"]),
            "code_version": self.state.get("code_version"),
            "protocol": proto.name,
            "protocol_version": proto.version,
            "split": split,
            "weights": weights,
            "n_problems": len(problems),
            **result,
            **baseline_mses(problems.A_inv, self.cfg.data.n, self.cfg.data.eval_seed),
        }, self.weights_problem(weights))


def evaluate_checkpoint(
    path: str | Path,
    protocol: str,
    split: str,
    weights: str = "ema",
    size: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """One evaluation row: checkpoint x protocol x split x weights (format in docs/ARCHITECTURE.md)."""
    return CheckpointEvaluator(path, device).evaluate(protocol, split, weights, size)


def evaluate_grid(
    checkpoint: str | Path,
    grid: Sequence[tuple[str, str, str]],
    out_paths: Sequence[str | Path],
    extra: dict[str, Any] | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Evaluate one checkpoint under every (protocol, split, weights) of ``grid``; write one JSON per entry.

    Loads the checkpoint once. Each JSON is written atomically, with ``extra`` (e.g. run id, milestone) merged
    in. A plain, picklable function, so the dispatcher can run it as a cluster job.
    """
    if len(grid) != len(out_paths):
        raise ValueError(f"grid has {len(grid)} entries but {len(out_paths)} output paths")
    evaluator = CheckpointEvaluator(checkpoint, device)
    rows = []
    for (protocol, split, weights), out in zip(grid, out_paths, strict=True):
        row = {**evaluator.evaluate(protocol, split, weights), **(extra or {})}
        write_text_atomic(out, dumps(row) + "\n")
        rows.append(row)
    return rows


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
    ev = CheckpointEvaluator(path, device)
    model, cfg = ev.model(weights), ev.cfg
    problems = make_split(split, cfg.data.n, cfg.data.split_size(split), cfg.data.eval_seed)
    if size is not None:
        problems = problems.slice(0, size)
    rows = []
    for k in steps:
        result = run_inference(
            model, ev.schedule, problems, current_settings(cfg, steps_per_level=k), cfg.inference.seed,
            cfg.inference.batch_size, ev.device, track_energy=True,
        )
        rows.append(with_status(
            {"checkpoint": str(path), "run": cfg.name, "step": int(ev.state["step"]), "split": split,
             "weights": weights, "steps_per_level": k, "n_problems": len(problems), **result},
            ev.weights_problem(weights),
        ))
    return rows


def write_run_sweep(
    checkpoint: str | Path,
    out_json: str | Path,
    steps: Sequence[int],
    splits: Sequence[str],
    weights: str = "ema",
    extra: Mapping[str, Any] | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Run the inference-steps sweep of one checkpoint on each split; write its rows as one JSON list (atomic).

    ``extra`` (e.g. experiment, seed, run) is merged into every row. A plain function, so a rule or a cluster job
    can call it; :mod:`ired.reporting.inference_sweep` reads and aggregates the files.
    """
    rows = [
        {**row, **(extra or {})}
        for split in splits
        for row in inference_sweep(checkpoint, tuple(int(k) for k in steps), split, weights, device=device)
    ]
    write_text_atomic(out_json, json.dumps(rows, indent=1) + "\n")
    return rows
