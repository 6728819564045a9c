"""The training curves of one run (plot ``curves``): six panels over ``step`` from its ``metrics.jsonl``, with the
diagnosis ``runs.csv`` gives it, and the live curves of a run in flight (``ired plot``).

Axis labels are the metric column names of the contract (``val_task_mse`` on the log is ``val_task_mse`` on the
axis). A panel whose columns are null in every row says so in words instead of being left blank, so a
denoise-only run's ``frac_sat`` panel reads "null in every row", not as an empty plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.reporting.columns import baseline_of
from ired.reporting.diagnosis_types import Finding
from ired.reporting.figure_canvas import STATUS_COLOURS, all_positive, axis_label, new_figure, say
from ired.reporting.formatting import to_float
from ired.reporting.log_rows import as_rows, series
from ired.runs.paths import RunPaths

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CURVES_SIZE = (15.0, 8.5)  # inches: 1500 x 850 px at DPI

# Panels of the training curves: (title, columns drawn as lines, columns drawn as evaluation points, log y?)
_CURVE_PANELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], bool], ...] = (
    ("denoising MSE (noise space)", ("train_denoise_mse",), ("val_denoise_mse", "val_denoise_mse_raw"), True),
    ("task MSE at evaluations (EMA; _raw: raw weights)", (),
     ("val_task_mse", "val_task_mse_raw", "val_harder_task_mse", "train_task_mse"), True),
    ("losses", ("loss_total", "loss_contrastive"), (), False),
    ("energies", ("E_pos", "E_neg", "margin"), (), False),
    ("contrastive saturation", ("frac_sat",), (), False),
    ("gradient field", ("gradE_norm", "pred_std", "target_std"), (), True),
)
_NULL_HINT = {
    "frac_sat": "no contrastive term: a denoise-only run?",
    "E_pos": "no contrastive term: a denoise-only run?",
    "loss_contrastive": "no contrastive term",
}


def training_curves_figure(
    metrics: pd.DataFrame | Iterable[Mapping[str, Any]],
    title: str = "",
    findings: Sequence[Finding] = (),
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Six panels over ``step``: denoising MSE, task MSE at evaluation points (EMA and ``_raw``), losses,
    E_pos / E_neg / margin, frac_sat, gradE_norm / pred_std. Findings with a step are drawn as vertical lines;
    the predict-mean baseline of ``val`` (when given) as a horizontal line on the task-MSE panel."""
    rows = as_rows(metrics)
    fig = new_figure(*CURVES_SIZE, constrained=False)
    fig.subplots_adjust(left=0.06, right=0.985, top=0.89, bottom=0.09, wspace=0.28, hspace=0.42)
    fig.suptitle(title or "training curves", fontsize=13)
    axes = fig.subplots(2, 3).ravel()
    if not rows:
        for ax in axes:
            say(ax, "metrics.jsonl has no rows")
        return fig
    for ax, (panel, lines, points, logy) in zip(axes, _CURVE_PANELS, strict=True):
        drawn: list[str] = []
        values: list[float] = []
        for col in lines:
            pts = series(rows, col)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=col, lw=1.4,
                        ls="--" if col == "target_std" else "-")
                drawn.append(col)
                values += [p[1] for p in pts]
        for col in points:
            pts = series(rows, col)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=col, marker="o", ms=4, lw=1,
                        ls=":" if col.endswith("_raw") else "-")
                drawn.append(col)
                values += [p[1] for p in pts]
        wanted = list(lines + points)
        ax.set_title(panel, fontsize=10)
        if not drawn:
            hint = next((_NULL_HINT[c] for c in wanted if c in _NULL_HINT), "")
            say(ax, f"{', '.join(wanted)}:\nnull in every row" + (f"\n({hint})" if hint else ""))
            continue
        if "frac_sat" in drawn:
            ax.axhline(0.99, color="grey", ls=":", lw=1, label="0.99")
            ax.set_ylim(-0.02, 1.02)
        if "val_task_mse" in drawn and baselines and baselines.get("val", {}).get("predict_mean_mse"):
            b = baselines["val"]["predict_mean_mse"]
            ax.axhline(b, color="black", ls="--", lw=1, label="val predict_mean_mse")
            values.append(b)
        if logy and all_positive(values) and max(values) / min(values) > 10:
            ax.set_yscale("log")
        for f in findings:
            if f.step is not None and f.kind in ("divergence", "collapse"):
                ax.axvline(f.step, color=STATUS_COLOURS["diverged" if f.kind == "divergence" else "collapsed"],
                           lw=1, ls="--", alpha=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(axis_label(drawn), fontsize=8 if len(drawn) > 1 else 10)
        missing = [c for c in wanted if c not in drawn and c != "target_std"]
        if missing:
            ax.text(0.01, 0.99, "null in every row: " + ", ".join(missing), transform=ax.transAxes,
                    fontsize=7, va="top", color="#555")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    marks = [f"{f.kind} @ {f.step}" for f in findings if f.step is not None and f.kind in ("divergence", "collapse")]
    if marks:
        fig.supxlabel("dashed vertical lines: " + "; ".join(marks), fontsize=9)
    return fig


def run_curves_figure(run_dir: str | Path, runs: pd.DataFrame | None = None) -> Figure:
    """Training curves of a run folder (its ``metrics.jsonl``) with the diagnosis ``runs.csv`` gives it (status
    in the title, divergence / collapse steps marked, the ``val`` predict-mean baseline). Reads files, diagnoses
    nothing; without a row in ``runs`` the curves are drawn unmarked."""
    from ired.runs.jsonl import read_jsonl

    run_dir = Path(run_dir)
    row = run_row(runs, run_dir)
    rows = read_jsonl(RunPaths(run_dir).metrics)
    if row is None:
        return training_curves_figure(rows, f"{run_dir.name}: not in runs.csv")
    mean = to_float(row.get(baseline_of("val", "predict_mean_mse")))
    baselines = {"val": {"predict_mean_mse": mean}} if math.isfinite(mean) else None
    return training_curves_figure(rows, f"{row['run']}: {row['status']}", finding_marks(row), baselines)


def live_curves_figure(run_dir: str | Path) -> Figure:
    """Training curves of a run folder as it is now (``ired plot``): its ``metrics.jsonl`` so far (a torn last line,
    a trainer mid-write, is dropped), titled with its state (``running at step 200 of 2000``). Needs no table: the
    run may be training, and the summary that diagnoses it comes later."""
    from ired.runs.jsonl import load_jsonl
    from ired.runs.state import run_state

    run_dir = Path(run_dir)
    rows = load_jsonl(RunPaths(run_dir).metrics).rows
    state = run_state(run_dir)
    status = state.status or {}
    where = f" at step {state.step}" + (f" of {status['steps']}" if status.get("steps") else "")
    return training_curves_figure(rows, f"{run_dir.name}: {state.state}{where if state.step is not None else ''} "
                                  f"({len(rows)} metrics rows)")


def run_row(runs: pd.DataFrame | None, run_dir: str | Path) -> dict[str, Any] | None:
    """The row of ``runs.csv`` of a run folder: same ``run_dir``, else ``run`` equal to the folder's name."""
    if runs is None or not len(runs) or "run" not in runs.columns:
        return None
    recs = runs.to_dict("records")
    here = Path(run_dir).resolve()
    found = [r for r in recs if isinstance(r.get("run_dir"), str) and Path(r["run_dir"]).resolve() == here]
    found = found or [r for r in recs if str(r.get("run")) == Path(run_dir).name]
    return found[0] if found else None


def finding_marks(row: Mapping[str, Any]) -> list[Finding]:
    """The findings of a ``runs.csv`` row that have a step (its ``finding_steps``: ``kind@step;...``)."""
    text = row.get("finding_steps")
    marks = []
    for part in (text.split(";") if isinstance(text, str) and text else []):
        kind, _, step = part.partition("@")
        if step:
            marks.append(Finding(kind, int(step), ""))
    return marks
