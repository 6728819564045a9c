"""Learning curves of several run folders side by side, against the trivial baselines: what a scale's budget is
chosen from (docs/results/<scale>/calibration.md).

``python -m ired.reporting.learning_curves RUN_DIR... --csv curves.csv --png curves.png`` reads each folder's
``metrics.jsonl`` and ``resolved_config.yaml`` and writes:

- the CSV: one row per run and evaluation step: ``run``, ``step``, ``val_task_mse`` (EMA weights),
  ``val_task_mse_raw``, ``val_harder_task_mse`` and its ``_raw``, ``train_denoise_mse`` (the row's), ``lr``,
  ``batch_size``, ``width``, ``objective``, ``head``, and ``val_predict_mean_mse`` (the predict-mean baseline of the
  run's own ``val`` split, from its config);
- the PNG: ``val_task_mse`` against the step, EMA solid and raw dotted, one colour per run, with the predict-mean
  baseline and the line ``--target`` times it (0.85 by default: "at least 15% below the baseline"), the y axis
  cut at :data:`ZOOM` x the baseline (the first rows of a run are far above it; the CSV has every row);
- on stdout, one line per run: the steps done, the median ``sec_per_step`` of its log rows (training steps only,
  evaluations excluded), the lowest and the last EMA ``val_task_mse`` with their steps.

Reads files only; trains and evaluates nothing (the baselines are computed from the config's fixed splits).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.core.config_io import build_config, read_yaml
from ired.core.errors import IredError, one_line_errors
from ired.runs.jsonl import read_jsonl
from ired.runs.paths import RunPaths

if TYPE_CHECKING:
    import pandas as pd

EVAL_COLUMNS = ("val_task_mse", "val_task_mse_raw", "val_harder_task_mse", "val_harder_task_mse_raw")
DEFAULT_TARGET = 0.85
ZOOM = 4.0
"""The chart's y axis ends at ZOOM x the largest predict-mean baseline."""


@dataclass(frozen=True)
class RunCurve:
    """One run folder's evaluation rows and what its log says about its speed."""

    run: str
    rows: list[dict[str, Any]]  # one per evaluation step: the CSV's columns
    steps_done: int
    sec_per_step: float  # median over the log rows
    baseline: float  # val_predict_mean_mse of the run's val split


def read_curve(run_dir: str | Path) -> RunCurve:
    """The evaluation rows of one run folder (its metrics.jsonl) with the config keys that tell runs apart."""
    from ired.science.data import trivial_baselines

    folder = Path(run_dir)
    paths = RunPaths(folder)
    if not paths.metrics.is_file() or not paths.resolved_config.is_file():
        raise IredError(f"{folder} is not a run folder (no metrics.jsonl or resolved_config.yaml)")
    cfg = build_config(read_yaml(paths.resolved_config), str(paths.resolved_config))
    baseline = trivial_baselines("val", cfg.data.n, cfg.data.val_size, cfg.data.eval_seed)["predict_mean_mse"]
    log = read_jsonl(paths.metrics)
    keys = {"lr": cfg.train.lr, "batch_size": cfg.train.batch_size, "width": cfg.model.width,
            "objective": cfg.objective.name, "head": cfg.model.head}
    rows = [{"run": folder.name, "step": int(r["step"]), **{c: r.get(c) for c in EVAL_COLUMNS},
             "train_denoise_mse": r.get("train_denoise_mse"), **keys, "val_predict_mean_mse": baseline}
            for r in log if r.get("val_task_mse") is not None]
    speeds = [float(r["sec_per_step"]) for r in log if r.get("sec_per_step") is not None]
    return RunCurve(folder.name, rows, max((int(r["step"]) for r in log), default=0),
                    statistics.median(speeds) if speeds else math.nan, baseline)


def curves_table(curves: Sequence[RunCurve]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([row for c in curves for row in c.rows])


def curves_figure(curves: Sequence[RunCurve], target: float = DEFAULT_TARGET) -> Any:
    """val_task_mse (EMA solid, raw dashed) against the step, the predict-mean baseline and ``target`` x it."""
    from matplotlib.figure import Figure

    from ired.reporting.figure_canvas import DPI

    fig = Figure(figsize=(10.0, 6.0), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for c, colour in zip(curves, colours, strict=True):
        steps = [r["step"] for r in c.rows]
        for column, style in (("val_task_mse", "-"), ("val_task_mse_raw", ":")):
            values = [r[column] if r[column] is not None else math.nan for r in c.rows]
            ax.plot(steps, values, style, color=colour, marker="o" if style == "-" else None, ms=3,
                    label=c.run if style == "-" else None)
    for b in sorted({c.baseline for c in curves}):
        ax.axhline(b, color="black", lw=1)
        ax.axhline(target * b, color="black", lw=1, ls="--")
        ax.annotate(f"predict the mean {b:.4g}", (0, b), xycoords=("axes fraction", "data"), va="bottom", fontsize=8)
        ax.annotate(f"{target:g} x that", (0, target * b), xycoords=("axes fraction", "data"), va="top", fontsize=8)
    ax.set_yscale("log")
    top = ZOOM * max(c.baseline for c in curves)
    if ax.get_ylim()[1] > top:  # the early rows (far above the baseline) would squash the region that matters
        ax.set_ylim(top=top)
        ax.set_title(f"values above {ZOOM:g} x the predict-mean baseline are off the chart (all rows: the CSV)",
                     fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylabel("val_task_mse (EMA: solid, raw: dotted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def describe(curve: RunCurve) -> str:
    """One line: steps, median sec/step, lowest and last EMA val_task_mse with their steps."""
    evals = [(r["step"], r["val_task_mse"]) for r in curve.rows if r["val_task_mse"] is not None]
    if not evals:
        return f"{curve.run}: {curve.steps_done} steps, {curve.sec_per_step:.3f} s/step, no evaluation yet"
    best = min(evals, key=lambda e: e[1])
    return (f"{curve.run}: {curve.steps_done} steps, {curve.sec_per_step:.3f} s/step (median of the log rows); "
            f"val_task_mse (EMA) lowest {best[1]:.5g} at step {best[0]}, last {evals[-1][1]:.5g} at step "
            f"{evals[-1][0]}; predict the mean {curve.baseline:.5g} (ratio last/baseline "
            f"{evals[-1][1] / curve.baseline:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ired.reporting.learning_curves",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl and resolved_config.yaml)")
    parser.add_argument("--csv", default=None, help="write the evaluation rows of every run here")
    parser.add_argument("--png", default=None, help="draw val_task_mse against the step here")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET,
                        help=f"draw this fraction of the predict-mean baseline (default {DEFAULT_TARGET})")
    args = parser.parse_args(argv)
    with one_line_errors("learning_curves"):
        curves = [read_curve(r) for r in args.runs]
        for c in curves:
            print(describe(c))
        if args.csv:
            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            curves_table(curves).to_csv(args.csv, index=False, float_format="%.6g")
        if args.png:
            from ired.reporting.figure_canvas import save_png

            save_png(curves_figure(curves, args.target), args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
