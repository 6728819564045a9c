"""Parity with the IRED reference at its laptop configuration: ``python -m benchmarks.parity``.

Trains 3 seeds of `denoise` and of `softplus` + mined negatives (the reference's contrastive shaping) at the
`reference_laptop` scale (config/scales/reference_laptop.yaml: n = 5, batch 256, width 512, time_dim 128,
lr 1e-4, 2,000 steps, vector head, the reference's EMA and training-time mining), evaluates each final
checkpoint with the reference's inference (protocol `reference`) on the fixed `val` split with EMA and raw
weights, and writes

- ``parity.md``: per objective and quantity, mean ± sample std over seeds against the reference's numbers
  (benchmarks/reference_numbers.yaml: measured with the release's own code on a 2-core CPU, each with its
  source) and a pass/fail column for the stated range;
- ``parity.csv``: the same table, one row per (objective, quantity);
- ``parity_runs.csv``: one row per run (seed), every number the table is made of.

Runs live in ``--runs`` (default results/parity/); a completed run is not trained again, an interrupted one
resumes. The ranges are those the parity issue stated before ired's numbers were measured (see RANGES). When
``--out`` holds ``release_window.csv`` (``python -m benchmarks.parity_release``: the release's own training on this
machine), the table also shows its numbers and Welch's p of the difference.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.reference_numbers import REFERENCE_FILE, Check, load_checks
from ired.core.config_io import build_config, deep_merge, read_yaml
from ired.core.run_config import RunConfig
from ired.evaluation.evaluate import CheckpointEvaluator
from ired.reporting.stats import welch_test

OBJECTIVES: dict[str, dict[str, Any]] = {
    "denoise": {"objective": {"name": "denoise"}},
    "contrastive": {"objective": {"name": "softplus"}, "negatives": {"name": "mined"}},
}
SEEDS = (0, 1, 2)
WINDOW = (1751, 2000)  # training-loss window, inclusive steps (the reference's "last 250 steps")
RELEASE_FILE = "release_window.csv"  # the release's own window means on this machine (benchmarks.parity_release)


def windowed(column: str) -> str:
    """The table's name of ``column``'s mean over WINDOW, e.g. ``margin[1751-2000]``."""
    return f"{column}[{WINDOW[0]}-{WINDOW[1]}]"


RANGES: tuple[Check, ...] = load_checks()
"""The reference's numbers and the ranges the parity issue stated from them (benchmarks/reference_numbers.yaml)."""
SPREAD_STDS = 2.0
"""The parity issue's definition of parity: within the reference's seed spread, its mean ± SPREAD_STDS sample stds."""
# Quantities reported without a reference number.
EXTRA: dict[str, tuple[str, ...]] = {
    "denoise": ("val_mse_ema (current protocol)", "val_mse_raw (current protocol)", "train_batch_task_mse_raw"),
    "contrastive": ("train_denoise_mse[1751-2000]", "val_mse_raw (reference protocol)",
                    "val_mse_ema (current protocol)", "val_mse_raw (current protocol)", "E_pos[1751-2000]",
                    "E_neg[1751-2000]", "frac_sat[1751-2000]", "train_batch_task_mse_raw"),
}


def _completed(run_dir: Path) -> bool:
    status = run_dir / "status.json"
    return (
        status.exists()
        and json.loads(status.read_text()).get("status") == "completed"
        and (run_dir / "final.pt").exists()
    )


def run_config(root: Path, objective: str, seed: int, overrides: dict[str, Any] | None = None) -> RunConfig:
    data = deep_merge(
        read_yaml(root / "config" / "base.yaml"), read_yaml(root / "config" / "scales" / "reference_laptop.yaml")
    )
    data = deep_merge(data, OBJECTIVES[objective])
    data = deep_merge(data, {"name": f"parity_{objective}-s{seed}", "seed": seed, **(overrides or {})})
    return build_config(data, source=f"reference_laptop scale, {objective}, seed {seed}")


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _window_mean(rows: list[dict[str, Any]], column: str, log_every: int) -> float | None:
    """Mean of ``column`` over steps WINDOW: the rows ending at WINDOW[0]-1+log_every .. WINDOW[1]."""
    values = [r[column] for r in rows if WINDOW[0] - 1 < r["step"] <= WINDOW[1] and r.get(column) is not None]
    expected = (WINDOW[1] - WINDOW[0] + 1) // log_every
    if len(values) != expected:
        return None
    return sum(values) / len(values)


def measure(run_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    """Every number of one run (cached in parity_measure.json next to final.pt, redone when final.pt is newer)."""
    cache = run_dir / "parity_measure.json"
    if cache.exists() and cache.stat().st_mtime >= (run_dir / "final.pt").stat().st_mtime:
        return json.loads(cache.read_text())
    out = _measure(run_dir, cfg)
    cache.write_text(json.dumps(out, indent=1))
    return out


def _measure(run_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    """Training-window means from metrics.jsonl, evaluations of final.pt with the reference protocol."""
    rows = _rows(run_dir)
    out: dict[str, Any] = {"run": cfg.name, "seed": cfg.seed}
    for column in ("train_denoise_mse", "loss_total", "loss_contrastive", "margin", "E_pos", "E_neg", "frac_sat"):
        out[windowed(column)] = _window_mean(rows, column, cfg.train.log_every)
    last = rows[-1]
    out["val_mse_ema (current protocol)"] = last["val_task_mse"]
    out["val_mse_raw (current protocol)"] = last["val_task_mse_raw"]
    out["train_batch_task_mse_raw"] = last.get("train_batch_task_mse_raw")
    evaluator = CheckpointEvaluator(run_dir / "final.pt", device="cpu")
    for weights in ("ema", "raw"):
        result = evaluator.evaluate("reference", "val", weights)
        out[f"val_mse_{weights} (reference protocol)"] = result["task_mse"]
        out["predict_zero_mse"], out["predict_mean_mse"] = result["predict_zero_mse"], result["predict_mean_mse"]
    status = json.loads((run_dir / "status.json").read_text())
    out["train_wall_s"] = status.get("wall_time_s")
    out["sec_per_step"] = statistics.fmean(r["sec_per_step"] for r in rows if r.get("sec_per_step") is not None)
    return out


def read_release_window(path: Path) -> dict[str, dict[str, list[float]]]:
    """RELEASE_FILE (one row per objective and seed, a column per quantity) -> objective -> windowed quantity ->
    the per-seed values (empty cells left out)."""
    out: dict[str, dict[str, list[float]]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for quantity, value in row.items():
                if quantity not in ("objective", "seed") and value:
                    out.setdefault(row["objective"], {}).setdefault(windowed(quantity), []).append(float(value))
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _range_text(check: Check) -> str:
    if check.low is not None and check.high is not None:
        return f"{check.low:g} to {check.high:g}"
    if check.high is not None:
        return f"< {check.high:g}" if check.high == 0 else f"<= {check.high:g}"
    return f">= {check.low:g}"


def table(measured: dict[str, list[dict[str, Any]]],
          release: dict[str, dict[str, list[float]]] | None = None) -> list[dict[str, Any]]:
    """One row per (objective, quantity): mean ± std over seeds, the reference and pass/fail where stated; with
    ``release`` (the release's own runs on this machine, benchmarks.parity_release), its mean ± std and Welch's p of the
    difference where it measured the quantity."""
    out = []
    release = release or {}
    checks = {(c.objective, c.quantity): c for c in RANGES}
    for objective, runs in measured.items():
        quantities = [c.quantity for c in RANGES if c.objective == objective] + list(EXTRA[objective])
        for quantity in quantities:
            values = [r[quantity] for r in runs if r.get(quantity) is not None]
            mean, std = _mean_std(values) if values else (float("nan"), float("nan"))
            check = checks.get((objective, quantity))
            verdict = "-"
            if check is not None:
                ok = bool(values) and (check.low is None or mean >= check.low) and (
                    check.high is None or (mean < check.high if check.high == 0 else mean <= check.high))
                verdict = "pass" if ok else "FAIL"
            theirs = release.get(objective, {}).get(quantity, [])
            r_mean, r_std = _mean_std(theirs) if theirs else (float("nan"), float("nan"))
            welch = welch_test(mean, std, len(values), r_mean, r_std, len(theirs), level=None)
            spread, source = ((r_mean, r_std), "release here") if len(theirs) > 1 else (
                (check.spread, REFERENCE_FILE.name) if check is not None and check.spread else (None, ""))
            low = high = float("nan")
            in_spread = "-"
            if spread is not None:
                low, high = spread[0] - SPREAD_STDS * spread[1], spread[0] + SPREAD_STDS * spread[1]
                in_spread = "pass" if values and low <= mean <= high else "FAIL"
            out.append({
                "objective": objective, "quantity": quantity, "ired_mean": mean, "ired_std": std,
                "seeds": len(values), "reference": check.reference_text if check else "",
                "range": _range_text(check) if check else "",
                "result": verdict, "release_here_mean": r_mean, "release_here_std": r_std,
                "release_here_seeds": len(theirs), "welch_p": welch.p,
                "spread_source": source, "spread_low": low, "spread_high": high, "within_spread": in_spread,
            })
    return out


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def markdown(
    rows: list[dict[str, Any]], runs: dict[str, list[dict[str, Any]]], command: str, wall_s: float | None
) -> str:
    first = next(iter(runs.values()))[0]
    lines = [
        "# Parity with the IRED reference (laptop configuration)",
        "",
        f"Generated by `{command}` (benchmarks.parity). Scale `reference_laptop` "
        "(config/scales/reference_laptop.yaml): "
        "n = 5, batch 256, width 512, time_dim 128, vector head, Adam 1e-4, 2,000 steps, the reference's EMA rule "
        "(`train.ema_rule: reference`) and training-time mining (`negatives.mining: reference`); "
        f"seeds {', '.join(str(s) for s in sorted({r['seed'] for rs in runs.values() for r in rs}))}. "
        "Validation MSE: the reference's inference (protocol `reference`) on the fixed `val` split "
        f"(1,024 problems; predict zero {_fmt(first['predict_zero_mse'])}, predict the mean "
        f"{_fmt(first['predict_mean_mse'])}); the reference evaluated 5,632 fresh problems. Training-window "
        "columns are means over steps 1751-2000. `contrastive` = softplus + mined negatives, weight 0.5.",
        "",
        "This table compares seed means. Whether ired's training step is the release's is checked step by step, on "
        "the same weights, batches and random draws, by `python -m benchmarks.parity_lockstep` (lockstep.md).",
        "",
        f"Reference numbers: the release's own code, 3 seeds, on a 2-core CPU ({REFERENCE_FILE.name}). "
        "The ranges are the "
        "ones stated in the parity issue before these runs (the reference's mean ± about 2 sample stds; the "
        "denoise training loss's lower bound 0.036 is tighter than its mean - 2 std, 0.0350; the contrastive "
        "margin's `< 0` is inferred from the release's loss, which does not log it); `pass` compares ired's mean "
        "over seeds with the range.",
        "",
        f"`seed spread`: the parity issue's own definition of parity, \"within the reference's seed spread\": the "
        f"reference's mean ± {SPREAD_STDS:g} sample stds over its seeds, taken from the release measured here when "
        f"it measured the quantity (`release here`), otherwise from {REFERENCE_FILE.name}; "
        "`pass` when ired's mean lies in it.",
        "",
    ]
    here = any(r["release_here_seeds"] for r in rows)
    if here:
        lines += [
            "`release here`: the release's own training on this machine, same configuration and window "
            f"(`python -m benchmarks.parity_release`, {RELEASE_FILE}); "
            "`Welch p`: Welch's t-test of ired's seeds against "
            "those, two-sided (a small p says the two differ beyond their seed spread).",
            "",
            "| objective | quantity | ired (mean ± std) | seeds | reference | range | result "
            "| release here (mean ± std, seeds) | Welch p | seed spread | within spread |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        lines += ["| objective | quantity | ired (mean ± std) | seeds | reference | range | result "
                  "| seed spread | within spread |",
                  "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        line = (f"| {r['objective']} | {r['quantity']} | {_fmt(r['ired_mean'])} ± {_fmt(r['ired_std'])} | "
                f"{r['seeds']} | "
                f"{r['reference'] or '-'} | {r['range'] or '-'} | {r['result']} |")
        if here and r["release_here_seeds"]:
            line += (f" {_fmt(r['release_here_mean'])} ± {_fmt(r['release_here_std'])} ({r['release_here_seeds']}) |"
                     f" {_fmt(r['welch_p'])} |")
        elif here:
            line += " - | - |"
        spread = (f"{_fmt(r['spread_low'])} to {_fmt(r['spread_high'])} ({r['spread_source']})"
                  if r["spread_source"] else "-")
        lines.append(line + f" {spread} | {r['within_spread']} |")
    lines += ["", "Per run (parity_runs.csv has every column):", "",
              "| run | train_denoise_mse[1751-2000] | val EMA (ref) | val raw (ref) | loss_contrastive | margin | "
              "frac_sat | train s | s/step |", "|---|---|---|---|---|---|---|---|---|"]
    for objective_runs in runs.values():
        for r in objective_runs:
            lines.append(
                f"| {r['run']} | {_fmt(r['train_denoise_mse[1751-2000]'])} | "
                f"{_fmt(r['val_mse_ema (reference protocol)'])} | "
                f"{_fmt(r['val_mse_raw (reference protocol)'])} | {_fmt(r['loss_contrastive[1751-2000]'])} | "
                f"{_fmt(r['margin[1751-2000]'])} | {_fmt(r['frac_sat[1751-2000]'])} | {_fmt(r['train_wall_s'])} | "
                f"{_fmt(r['sec_per_step'])} |"
            )
    lines += [
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads available, torch {torch.__version__}; "
        "the training times were measured on a machine shared with other jobs, so they say nothing about speed."
        + (f" Whole command: {wall_s / 60:.1f} min." if wall_s else ""),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="Repository root (holds config/base.yaml and config/scales/).")
    parser.add_argument("--runs", default="results/parity", help="Folder of the parity runs (resumed if present).")
    parser.add_argument("--out", default="docs/results/parity", help="Where parity.md / parity.csv are written.")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--no-train", action="store_true",
                        help="Only measure the runs already completed in --runs (the table names the missing ones).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a run-config key for every run (e.g. train.steps=200 for a smoke test).")
    args = parser.parse_args(argv)
    from ired.core.config_io import parse_set
    from ired.core.errors import IredError
    from ired.training.trainer import train

    root, runs_dir, out_dir = Path(args.root), Path(args.runs), Path(args.out)
    overrides: dict[str, Any] = {}
    for assignment in args.set:
        overrides = deep_merge(overrides, parse_set(assignment))
    started = time.time()
    trained: dict[tuple[str, int], tuple[Path, RunConfig]] = {}
    missing: list[str] = []
    try:
        for seed in args.seeds:  # seed-major: an interrupted command leaves both objectives with as many seeds
            for objective in args.objectives:
                cfg = run_config(root, objective, seed, overrides)
                run_dir = runs_dir / f"{objective}-s{seed}"
                if not _completed(run_dir):
                    if args.no_train:
                        missing.append(cfg.name)
                        continue
                    print(f"parity: training {cfg.name} in {run_dir}", flush=True)
                    train(cfg, run_dir, echo=False)
                trained[(objective, seed)] = (run_dir, cfg)
        measured: dict[str, list[dict[str, Any]]] = {}
        for objective in args.objectives:
            for seed in args.seeds:
                if (objective, seed) in trained:
                    measured.setdefault(objective, []).append(measure(*trained[(objective, seed)]))
                    print(f"parity: measured {objective}-s{seed}", flush=True)
    except IredError as exc:
        print(f"benchmarks.parity: {exc}", file=sys.stderr)
        return 2
    if not measured:
        print(f"benchmarks.parity: no completed run in {runs_dir}", file=sys.stderr)
        return 2
    release_file = out_dir / RELEASE_FILE
    rows = table(measured, read_release_window(release_file) if release_file.exists() else None)
    command = "python -m benchmarks.parity" + "".join(f" --set {s}" for s in args.set)
    if list(args.seeds) != list(SEEDS):
        command += " --seeds " + " ".join(str(s) for s in args.seeds)
    if list(args.objectives) != list(OBJECTIVES):
        command += " --objectives " + " ".join(args.objectives)
    if args.out != parser.get_default("out"):
        command += f" --out {args.out}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "parity.csv").write_text(_csv(rows))
    (out_dir / "parity_runs.csv").write_text(_csv([r for runs in measured.values() for r in runs]))
    text = markdown(rows, measured, command, None if args.no_train else time.time() - started)
    if missing:
        text += f"\nNot run (missing from this table): {', '.join(missing)}.\n"
    (out_dir / "parity.md").write_text(text)
    failed = [f"{r['objective']} {r['quantity']}" for r in rows if r["result"] == "FAIL"]
    spread = [f"{r['objective']} {r['quantity']}" for r in rows if r["within_spread"] == "FAIL"]
    print(f"parity: wrote {out_dir / 'parity.md'}; "
          + (f"outside the stated range: {', '.join(failed)}" if failed else "all in the stated ranges") + "; "
          + (f"outside the seed spread: {', '.join(spread)}" if spread else "all within the seed spread"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
