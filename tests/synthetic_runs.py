"""Synthetic metrics logs and run folders showing one pathology each (for the diagnostics/report/plot tests).

Values are shaped after the research notes and the IRED reference (benchmarks/reference_numbers.yaml): the collapse
of a vector-head softplus run (gradE_norm, pred_std -> 0, train_denoise_mse stuck at ~1), saturation of a
scalar-head softplus run (frac_sat ~0.997), the q209 mismatch (train_denoise_mse 0.009 vs val_task_mse 2.5), and
n=20 baselines.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from ired.core.metrics import DEFINITIONS, EVAL_COLUMNS, TRAIN_COLUMNS

BASELINES = {
    "val": {"predict_zero_mse": 0.0207, "predict_mean_mse": 0.0141},
    "val_harder": {"predict_zero_mse": 0.255, "predict_mean_mse": 0.22},
    "train_subset": {"predict_zero_mse": 0.0205, "predict_mean_mse": 0.0140},
}
CONTRACT = dict(DEFINITIONS)  # what the trainer writes to metrics_contract.json

STEPS = 2000
LOG_EVERY = 50
EVAL_EVERY = 250


def make_log(
    kind: str = "healthy", seed: int = 0, final_val: float = 0.010, steps: int = STEPS
) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl showing ``kind``: healthy, denoise_only, collapse, saturation, divergence,
    mismatch, ema_raw, trivial."""
    rng = random.Random(seed)
    contrastive = kind != "denoise_only" and kind != "mismatch"
    rows = []
    for step in range(0, steps + 1, LOG_EVERY):
        if kind == "divergence" and step > 1350:
            break  # the trainer stops soon after the loss blows up
        f = step / steps
        jitter = 1 + 0.03 * (rng.random() - 0.5)
        mse = (0.15 + 0.85 * math.exp(-5 * f)) * jitter
        grad, pstd = 1.0 * jitter, 0.9 * jitter
        sat = 0.3 + 0.2 * rng.random() if contrastive else None
        e_pos, e_neg = -0.5 * f, 0.5 + 0.5 * f
        if kind == "collapse":
            decay = math.exp(-12 * f)
            grad, pstd = 2.0 * decay * jitter + 1e-3, 0.9 * decay * jitter + 5e-4
            mse = 1.0 - 0.05 * decay
            e_pos, e_neg = 0.5 * decay, 5.0 + 10 * f
        if kind == "saturation":
            sat = 0.997 if step >= 150 else 0.6
            mse = (0.3 + 0.7 * math.exp(-5 * f)) * jitter
            e_pos, e_neg = -20 * f, 20 * f
        if kind == "mismatch":
            mse = 0.009 + 0.99 * math.exp(-8 * f)
        lc = 0.35 * (1 - 0.5 * f) if contrastive else None
        row: dict[str, Any] = {c: None for c in TRAIN_COLUMNS + EVAL_COLUMNS}
        row.update(
            step=step, train_denoise_mse=mse, loss_contrastive=lc,
            loss_total=mse + (0.5 * lc if lc is not None else 0.0),
            E_pos=e_pos if contrastive else None, E_neg=e_neg if contrastive else None,
            margin=(e_neg - e_pos) if contrastive else None, frac_sat=sat,
            gradE_norm=grad, pred_mean=0.0, pred_std=pstd, target_mean=0.0, target_std=1.0,
            lr=1e-4, grad_norm=0.5 * jitter, sec_per_step=0.1,
        )
        if kind == "divergence" and step >= 1200:
            row["loss_total"] = 50.0 * (1 + (step - 1200) / 100)
            row["train_denoise_mse"] = row["loss_total"]
        if step % EVAL_EVERY == 0 and step > 0 and not (kind == "divergence" and step >= 1200):
            val = final_val + 0.04 * math.exp(-4 * f)
            if kind == "collapse":
                val = 0.0207
            if kind == "saturation":
                val = 0.013 + 0.02 * math.exp(-4 * f)
            if kind == "trivial":
                val = 0.018 + 0.02 * math.exp(-4 * f)
            raw = val * 0.8
            train_task = val * 0.97
            if kind == "mismatch":
                val, raw, train_task = 2.5, 2.45, 2.4
            if kind == "ema_raw":
                val, raw, train_task = 0.5, 0.01, 0.49
            row.update(
                val_task_mse=val, val_task_mse_raw=raw, train_task_mse=train_task, train_task_mse_raw=train_task * 0.8,
                val_harder_task_mse=0.2 + val, val_harder_task_mse_raw=0.2 + raw,
                val_denoise_mse=mse * 1.05, val_denoise_mse_raw=mse * 1.04,
            )
        rows.append(row)
    return rows


def write_run(
    root: Path,
    name: str,
    kind: str = "healthy",
    seed: int = 0,
    final_val: float = 0.010,
    status: str = "completed",
    attempts: list[dict[str, Any]] | None = None,
    head: str = "vector",
    objective: str = "softplus",
    steps: int = STEPS,
) -> Path:
    """A run folder with real metrics.jsonl, status.json, attempts.jsonl, metrics_contract.json and config."""
    d = root / name
    d.mkdir(parents=True)
    rows = make_log(kind, seed, final_val)
    if status == "running":  # the job died half-way
        rows = rows[: len(rows) // 2]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    last = rows[-1]["step"]
    st = {"status": status, "step": last, "steps": steps, "diverged_at": 1200 if status == "diverged" else None,
          "detail": "loss_total is inf" if status == "diverged" else "", "wall_time_s": 100.0 + seed,
          "resumed_from": None}
    (d / "status.json").write_text(json.dumps(st))
    if attempts is not None:
        (d / "attempts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in attempts))
    (d / "metrics_contract.json").write_text(json.dumps(CONTRACT))
    (d / "resolved_config.yaml").write_text(
        f"name: {name}\ndescription: synthetic {kind} run\nseed: {seed}\nmodel:\n  head: {head}\n"
        f"objective:\n  name: {objective}\nnegatives:\n  name: mined\ndata:\n  n: 20\n"
    )
    return d


def write_eval_jsons(root: Path, run: str, run_dir: Path, task: dict[str, float]) -> list[Path]:
    """Evaluation result JSONs of one run's final checkpoint: protocols current/reference on 3 splits
    (task_mse from ``task[split]``, reference x1.1), denoise on val, EMA and raw weights."""
    out = []
    root.mkdir(parents=True, exist_ok=True)
    for weights in ("ema", "raw"):
        for protocol in ("current", "reference", "denoise"):
            for split in ("train_subset", "val", "val_harder"):
                if protocol == "denoise" and split != "val":
                    continue
                d = {
                    "checkpoint": str(run_dir / "final.pt"), "run": run, "milestone": "final",
                    "protocol": protocol, "protocol_version": 1, "split": split, "weights": weights,
                    "n_problems": 256, **BASELINES[split],
                }
                scale = (1.1 if protocol == "reference" else 1.0) * (0.8 if weights == "raw" else 1.0)
                if protocol == "denoise":
                    d["denoise_mse"] = 0.2
                else:
                    d["task_mse"] = task[split] * scale
                    d["inference"] = {"steps_per_level": 5}
                p = root / f"{run}__{protocol}__{split}__{weights}.json"
                p.write_text(json.dumps(d))
                out.append(p)
    return out
