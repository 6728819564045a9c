"""Plots of the pipeline, and their registry :data:`PLOTS`: per-run training curves, the ablation bar chart, the
parameter sweeps, the per-experiment cross-eval heatmap and the inference-steps sweep.

Each plot is one figure function plus one :class:`Plot` entry in :data:`PLOTS`: its name (the file
``results/<scale>/plots/<name>.png``, or ``plots/<name>/<run>.png`` for a per-run plot), the pipeline tables it
reads (:data:`TABLES`, passed to the function by name), its caption, its category in Snakemake's report and the
section of the HTML report that shows it. ``workflow/rules/plots.smk`` makes one rule per entry (``plot_<name>``)
and the report rule declares and embeds them; :func:`render` is what every rule calls (docs/ARCHITECTURE.md,
"Adding a plot"). Plots read tables and run folders; they diagnose nothing (the diagnosis is in ``runs.csv``).

Figures are built with :class:`matplotlib.figure.Figure` (the Agg canvas, no pyplot global state, no display)
and written as PNG. Axis labels are the metric column names of the contract (``val_task_mse`` on the log is
``val_task_mse`` on the axis). A panel whose columns are null in every row says so in words instead of being
left blank, so a denoise-only run's ``frac_sat`` panel reads "null in every row", not as an empty plot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.reporting.columns import ABLATION_COLUMNS, SWEEP, baseline_of, mean_of, n_of, std_of, sweep_keys
from ired.reporting.cross_eval import SPLIT_ORDER
from ired.reporting.diagnostics import Finding, as_rows, series
from ired.reporting.formatting import to_float
from ired.runs.paths import RunPaths

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
CURVES_SIZE = (15.0, 8.5)  # inches: 1500 x 850 px at DPI
STATUS_COLOURS = {
    "stable": "#2b8a3e",
    "ambiguous": "#e8a33d",
    "plateau-saturated": "#d9730d",
    "collapsed": "#c92a2a",
    "diverged": "#862e9c",
    "failed-infrastructure": "#868e96",
}

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


def _figure(width: float, height: float, constrained: bool = True) -> "Figure":
    """A figure on the Agg canvas; ``constrained=False`` for fixed grids (constrained layout halves the speed)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)


def save_png(fig: "Figure", path: str | Path) -> Path:
    """Write a figure as PNG (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def png_bytes(fig: "Figure", dpi: int = DPI) -> bytes:
    """A figure as PNG bytes (for embedding in the HTML report; a lower ``dpi`` keeps the file small)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _say(ax: "Axes", text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=10, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def _label(columns: Sequence[str]) -> str:
    """Axis label = the metric column names, two per line so that a shared axis stays readable."""
    return "\n".join(", ".join(columns[i : i + 2]) for i in range(0, len(columns), 2))


def _positive(values: Iterable[float]) -> bool:
    vals = list(values)
    return bool(vals) and all(v > 0 for v in vals)


# --------------------------------------------------------------------------------------------------
# Training curves of one run
# --------------------------------------------------------------------------------------------------


def training_curves_figure(
    metrics: "pd.DataFrame | Iterable[Mapping[str, Any]]",
    title: str = "",
    findings: Sequence[Finding] = (),
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> "Figure":
    """Six panels over ``step``: denoising MSE, task MSE at evaluation points (EMA and ``_raw``), losses,
    E_pos / E_neg / margin, frac_sat, gradE_norm / pred_std. Findings with a step are drawn as vertical lines;
    the predict-mean baseline of ``val`` (when given) as a horizontal line on the task-MSE panel."""
    rows = as_rows(metrics)
    fig = _figure(*CURVES_SIZE, constrained=False)
    fig.subplots_adjust(left=0.06, right=0.985, top=0.89, bottom=0.09, wspace=0.28, hspace=0.42)
    fig.suptitle(title or "training curves", fontsize=13)
    axes = fig.subplots(2, 3).ravel()
    if not rows:
        for ax in axes:
            _say(ax, "metrics.jsonl has no rows")
        return fig
    for ax, (panel, lines, points, logy) in zip(axes, _CURVE_PANELS):
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
            _say(ax, f"{', '.join(wanted)}:\nnull in every row" + (f"\n({hint})" if hint else ""))
            continue
        if "frac_sat" in drawn:
            ax.axhline(0.99, color="grey", ls=":", lw=1, label="0.99")
            ax.set_ylim(-0.02, 1.02)
        if "val_task_mse" in drawn and baselines and baselines.get("val", {}).get("predict_mean_mse"):
            b = baselines["val"]["predict_mean_mse"]
            ax.axhline(b, color="black", ls="--", lw=1, label="val predict_mean_mse")
            values.append(b)
        if logy and _positive(values) and max(values) / min(values) > 10:
            ax.set_yscale("log")
        for f in findings:
            if f.step is not None and f.kind in ("divergence", "collapse"):
                ax.axvline(f.step, color=STATUS_COLOURS["diverged" if f.kind == "divergence" else "collapsed"],
                           lw=1, ls="--", alpha=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(_label(drawn), fontsize=8 if len(drawn) > 1 else 10)
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


def run_curves_figure(run_dir: str | Path, runs: "pd.DataFrame | None" = None) -> "Figure":
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


def live_curves_figure(run_dir: str | Path) -> "Figure":
    """Training curves of a run folder as it is now (``ired plot``): its ``metrics.jsonl`` so far (a torn last line,
    a trainer mid-write, is dropped), titled with its state (``running at step 200 of 2000``). Needs no table: the
    run may be training, and the summary that diagnoses it comes later."""
    from ired.runs.jsonl import load_jsonl
    from ired.runs.state import run_state

    run_dir = Path(run_dir)
    rows = load_jsonl(RunPaths(run_dir).metrics).rows
    state = run_state(run_dir)
    where = f" at step {state.step}" + (f" of {state.status['steps']}" if (state.status or {}).get("steps") else "")
    return training_curves_figure(rows, f"{run_dir.name}: {state.state}{where if state.step is not None else ''} "
                                  f"({len(rows)} metrics rows)")


def run_row(runs: "pd.DataFrame | None", run_dir: str | Path) -> dict[str, Any] | None:
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


# --------------------------------------------------------------------------------------------------
# Ablation bars
# --------------------------------------------------------------------------------------------------


def ablation_figure(summary: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> "Figure":
    """One panel per ablation column of the summary (:data:`ired.reporting.columns.ABLATION_COLUMNS`: ``val_task_mse``
    and ``val_harder_task_mse``, EMA weights) with a bar per experiment: mean over seeds, error bars one std,
    dots for single seeds (``runs``), bar colour = status; the trivial baselines (predict zero, predict mean) of
    the column's split as horizontal lines."""
    from matplotlib.patches import Patch

    n = len(summary)
    fig = _figure(max(10.0, 0.9 * n + 4.0), 6.5)
    axes = fig.subplots(1, len(ABLATION_COLUMNS), squeeze=False)[0]
    recs = summary.to_dict("records") if n else []
    for ax, column in zip(axes, ABLATION_COLUMNS):
        col, split = column.name, column.split
        means = [to_float(r.get(mean_of(col))) for r in recs]
        stds = [to_float(r.get(std_of(col))) for r in recs]
        if not any(math.isfinite(m) for m in means):
            _say(ax, f"{col}: no evaluated run (null in every summary row)")
            ax.set_title(f"{col} ({column.weights} weights)")
            continue
        x = list(range(n))
        colours = [STATUS_COLOURS.get(str(r.get("status")), "#4c6ef5") for r in recs]
        heights = [m if math.isfinite(m) else 0.0 for m in means]
        ax.bar(x, heights, color=colours, alpha=0.85,
               yerr=[s if math.isfinite(s) else 0.0 for s in stds], capsize=4, ecolor="black")
        values = [m for m in means if math.isfinite(m) and m > 0]
        if runs is not None and len(runs) and col in runs.columns:
            for i, r in enumerate(recs):
                seeds = runs[(runs["experiment"] == r["experiment"])][col].dropna().tolist()
                ax.scatter([i] * len(seeds), seeds, color="black", s=12, zorder=3,
                           label="single seeds" if i == 0 else None)
                values += [v for v in seeds if v > 0]
        for key, style, label in (("predict_zero_mse", ":", "predict zero"), ("predict_mean_mse", "--", "predict mean")):
            bs = [to_float(r.get(baseline_of(str(split), key))) for r in recs]
            first = True
            for i, b in enumerate(bs):
                if math.isfinite(b):
                    ax.hlines(b, i - 0.45, i + 0.45, colors="black", linestyles=style, lw=1.5,
                              label=f"{split} {label} ({b:.3g})" if first else None)
                    values.append(b)
                    first = False
        for i, m in enumerate(means):
            if not math.isfinite(m):
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
        if values and max(values) / min(values) > 10:
            ax.set_yscale("log")
        ax.set_xticks(x, [str(r["experiment"]) for r in recs], rotation=45, ha="right")
        ax.set_xlabel("experiment")
        ax.set_ylabel(col)
        ax.set_title(f"{col} ({column.weights} weights, mean ± std over seeds)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    present = [s for s in STATUS_COLOURS if any(r.get("status") == s for r in recs)]
    if present:
        handles = [Patch(color=STATUS_COLOURS[s], label=s) for s in present]
        fig.legend(handles=handles, title="bar colour = status", fontsize=8, title_fontsize=8,
                   loc="outside lower center", ncol=len(handles))
    return fig


# --------------------------------------------------------------------------------------------------
# Parameter sweeps
# --------------------------------------------------------------------------------------------------

_MAX_LEGEND = 12
"""More lines than this in a sweep panel: one colour scale and a note instead of a legend entry per line."""


def _sweep_x(values: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    """Positions of swept values on the x axis: the numbers themselves, or 0, 1, ... for words (with labels)."""
    from ired.reporting.formatting import finite

    if all(finite(v) for v in values):
        return [float(v) for v in values], None
    labels = list(dict.fromkeys(str(v) for v in values))
    return [float(labels.index(str(v))) for v in values], labels


def sweeps_figure(summary: "pd.DataFrame", metric: str = "val_task_mse") -> "Figure":
    """A metric (``metric``: a ``mean_std`` column of the summary, EMA ``val_task_mse`` by default) against each
    swept key of each parameter sweep: one row of panels per sweep, one panel per swept key with more than one
    value, one line per combination of the other swept keys (mean over seeds, error bars one std); a log x axis
    when the values span more than 10x. The summary groups the experiments of a sweep (columns ``sweep`` and
    one per swept key, :mod:`ired.reporting.columns`)."""
    from ired.reporting.formatting import num

    named = summary[summary[SWEEP].notna()] if len(summary) and SWEEP in summary.columns else summary.iloc[0:0]
    sweeps = list(dict.fromkeys(named[SWEEP].astype(str))) if len(named) else []
    if not sweeps:
        fig = _figure(8, 2.5)
        _say(fig.subplots(), "no parameter sweep in this study (no run's config.yaml has a `sweep` key)")
        return fig
    if mean_of(metric) not in summary.columns:
        raise ValueError(f"sweeps plot: metric {metric!r} is not a column of the summary "
                         f"(no {mean_of(metric)}); choose one of the summary's *_mean columns")
    keys = sweep_keys(summary.columns)
    panels: list[tuple[str, "pd.DataFrame", list[str], list[str]]] = []
    for name in sweeps:
        rows = named[named[SWEEP].astype(str) == name]
        own = [k for k in keys if rows[k].notna().any()]
        xs = [k for k in own if rows[k].nunique() > 1] or own[:1]
        panels.append((name, rows, own, xs))
    ncols = max(len(xs) for *_, xs in panels)
    fig = _figure(max(7.0, 6.0 * ncols), 4.6 * len(panels))
    grid = fig.subplots(len(panels), ncols, squeeze=False)
    weights = "raw" if metric.endswith("_raw") else "EMA"
    for axes, (name, rows, own, xs) in zip(grid, panels):
        for ax in axes[len(xs):]:
            ax.set_visible(False)
        for ax, key in zip(axes, xs):
            others = [k for k in own if k != key]
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for r in rows.to_dict("records"):
                groups.setdefault(tuple(r[k] for k in others), []).append(r)
            xpos, labels = _sweep_x(list(rows[key]))
            at = dict(zip(map(str, rows[key]), xpos))
            many = len(groups) > _MAX_LEGEND
            cmap = _cmap()
            values: list[float] = []
            for i, (combo, pts) in enumerate(groups.items()):
                pts = sorted(pts, key=lambda r: at[str(r[key])])
                x = [at[str(r[key])] for r in pts]
                y = [to_float(r.get(mean_of(metric))) for r in pts]
                err = [s if math.isfinite(s) else 0.0 for s in (to_float(r.get(std_of(metric))) for r in pts)]
                n = max((int(v) for r in pts if math.isfinite(v := to_float(r.get(n_of(metric))))), default=0)
                label = ", ".join(f"{k}={num(v)}" for k, v in zip(others, combo)) or metric
                ax.errorbar(x, y, yerr=err, marker="o", ms=4, lw=1.0 if many else 1.5, capsize=3,
                            color=cmap(i / max(1, len(groups) - 1)) if many else None,
                            label=None if many else f"{label} ({n} seed{'s' if n != 1 else ''})")
                values += [v for v in y if math.isfinite(v)]
            if labels is not None:
                ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            elif _positive(xpos) and max(xpos) / min(xpos) > 10:
                ax.set_xscale("log")
            if _positive(values) and max(values) / min(values) > 10:
                ax.set_yscale("log")
            ax.set_xlabel(key)
            ax.set_ylabel(metric)
            ax.set_title(f"sweep {name}: {metric} against {key}", fontsize=10)
            ax.grid(alpha=0.3)
            if many:
                ax.text(0.01, 0.99, f"{len(groups)} lines, one per combination of {', '.join(others)}",
                        transform=ax.transAxes, fontsize=7, va="top", color="#555")
            else:
                ax.legend(fontsize=7, loc="best", framealpha=0.9)
    fig.suptitle(f"parameter sweeps: {metric} ({weights} weights, last evaluation; mean ± std over seeds)",
                 fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# Cross-eval heatmap
# --------------------------------------------------------------------------------------------------


def _ordered(values: Iterable[Any], order: Sequence[str]) -> list[str]:
    vals = {str(v) for v in values}
    return [o for o in order if o in vals] + sorted(vals - set(order))


def cross_eval_figure(cross_eval: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> "Figure":
    """Heatmap of the cross-evaluation per experiment: rows experiment x weights, columns protocol x split,
    each cell the mean ± std over the experiment's seeds (:func:`ired.reporting.cross_eval.cross_eval_by_experiment`: each
    seed's last checkpoint), annotated. One log colour scale per column, so a column of ``denoise_mse`` (another
    definition) or of the harder split does not flatten the others; missing combinations are grey and marked
    "-". ``runs`` (``runs.csv``) maps runs to experiments; without it each run is its own row.
    """
    import numpy as np

    from ired.reporting.cross_eval import cross_eval_by_experiment

    agg = cross_eval_by_experiment(cross_eval, runs)
    if not len(agg):
        fig = _figure(8, 3)
        _say(fig.subplots(), "no cross-eval results (results/cross_eval.csv is empty or missing)")
        return fig
    row_keys = list(dict.fromkeys(zip(agg["experiment"], agg["weights"])))
    col_keys = list(dict.fromkeys(zip(agg["protocol"], agg["split"])))
    mean = np.full((len(row_keys), len(col_keys)), np.nan)
    std = np.full_like(mean, np.nan)
    for r in agg.to_dict("records"):
        i, j = row_keys.index((r["experiment"], r["weights"])), col_keys.index((r["protocol"], r["split"]))
        mean[i, j], std[i, j] = r["mean"], r["std"]
    shade = np.full_like(mean, np.nan)  # 0 (lowest of its column) .. 1 (highest), log scale
    for j in range(len(col_keys)):
        col = mean[:, j]
        ok = np.isfinite(col) & (col > 0)
        if ok.any():
            lo, hi = np.log(col[ok].min()), np.log(col[ok].max())
            shade[ok, j] = (np.log(col[ok]) - lo) / (hi - lo) if hi > lo else 0.5
    fig = _figure(3.5 + 1.3 * len(col_keys), 2.0 + 0.32 * len(row_keys))
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(shade), cmap=_cmap(), vmin=0, vmax=1, aspect="auto")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            m, s = mean[i, j], std[i, j]
            if not np.isfinite(m):
                ax.text(j, i, "-", ha="center", va="center", fontsize=8)
                continue
            text = f"{m:.3g}" + (f" ± {s:.1g}" if np.isfinite(s) else "")
            dark = np.isfinite(shade[i, j]) and shade[i, j] < 0.5  # viridis: dark at the low end
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="white" if dark else "black")
    ax.set_xticks(range(len(col_keys)),
                  [f"{p}\n{s}" + ("\n(denoise_mse)" if p == "denoise" else "") for p, s in col_keys], fontsize=8)
    ax.set_yticks(range(len(row_keys)), [f"{e} [{w}]" for e, w in row_keys], fontsize=8)
    ax.set_xlabel("protocol x split")
    ax.set_ylabel("experiment [weights]")
    ax.set_title("cross-evaluation per experiment: task_mse, mean ± std over seeds (last checkpoint)\n"
                 "colour: log scale per column, dark = lowest of the column", fontsize=10)
    return fig


def _cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")


# --------------------------------------------------------------------------------------------------
# Inference-steps sweep (landscape measurements)
# --------------------------------------------------------------------------------------------------


def inference_sweep_figure(inference_sweep: "pd.DataFrame", experiments: Sequence[str] | None = None) -> "Figure":
    """Task MSE, rejected share and energy monotonicity against K, the inference gradient steps per level:
    one row of three panels per split, one line per experiment (mean over seeds, error bars one std).

    ``inference_sweep``: ``results/inference_sweep.csv`` (:mod:`ired.reporting.inference_sweep`); ``experiments``: which to draw,
    in this order (None: all). Axis labels are the summary's column names without the K: ``val_task_mse@K``.
    """
    from ired.reporting.inference_sweep import SWEEP_METRICS, sweep_by_experiment

    long = sweep_by_experiment(inference_sweep)
    if experiments is not None and len(long):
        long = long[long["experiment"].isin(list(experiments))]
    splits = _ordered(long["split"], SPLIT_ORDER) if len(long) else []
    fig = _figure(15.0, 4.2 * max(1, len(splits)))
    if not splits:
        _say(fig.subplots(), "no inference sweep rows for the chosen experiments "
                             "(results/inference_sweep.csv is empty or has none of them)")
        return fig
    axes = fig.subplots(len(splits), len(SWEEP_METRICS), squeeze=False)
    names = [e for e in (experiments or []) if e in set(long["experiment"])] or list(dict.fromkeys(long["experiment"]))
    for row_axes, split in zip(axes, splits):
        part = long[long["split"] == split]
        for ax, metric in zip(row_axes, SWEEP_METRICS):
            values: list[float] = []
            for i, exp in enumerate(names):
                e = part[part["experiment"] == exp].sort_values("steps_per_level")
                if not len(e):
                    continue
                ks = e["steps_per_level"].tolist()
                means = [to_float(v) for v in e[mean_of(metric)]]
                stds = [to_float(v) if math.isfinite(to_float(v)) else 0.0 for v in e[std_of(metric)]]
                n = int(e["n_seeds"].max())
                shift = 1 + 0.025 * (i - (len(names) - 1) / 2)  # a small offset on the log axis: bars stay apart
                ax.errorbar([k * shift for k in ks], means, yerr=stds, marker="o", ms=4, lw=1.4, capsize=3,
                            ls="--" if exp.startswith("q") else "-", label=f"{exp} ({n} seed{'s' if n > 1 else ''})")
                values += [m for m in means if math.isfinite(m)]
            ax.set_xscale("log")
            ks_all = sorted(set(int(k) for k in part["steps_per_level"]))
            ax.set_xticks(ks_all, [str(k) for k in ks_all])
            ax.minorticks_off()
            ax.set_xlabel("K = steps_per_level (inference gradient steps per level)")
            ax.set_ylabel(f"{split}_{metric}@K")
            if metric == "task_mse" and _positive(values) and max(values) / min(values) > 10:
                ax.set_yscale("log")
            ax.set_title(f"{split}_{metric}@K", fontsize=10)
            ax.grid(alpha=0.3)
        row_axes[0].legend(fontsize=7, loc="best", framealpha=0.9)
    fig.suptitle("inference-steps sweep of each run's last checkpoint (EMA weights; mean ± std over seeds; "
                 "dashed: q-experiments)", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# The registry: one entry per plot
# --------------------------------------------------------------------------------------------------

TABLES: dict[str, str] = {
    "summary": "summary.csv",
    "runs": "runs.csv",
    "cross_eval": "cross_eval.csv",
    "inference_sweep": "inference_sweep.csv",
}
"""The pipeline tables a plot can read (under ``results/<scale>/``), by the name its figure function takes."""

REPORT_SECTIONS: tuple[str, ...] = ("ablation", "sweeps", "cross-evaluation", "inference-sweep")
"""The sections of the HTML report that can show a plot, in the order of the page."""


@dataclass(frozen=True)
class Plot:
    """One plot of the pipeline (an entry of :data:`PLOTS`)."""

    name: str
    """The file: ``plots/<name>.png`` (per run: ``plots/<name>/<run>.png``); the rule: ``plot_<name>``."""
    draw: Callable[..., "Figure"]
    """The figure function; it takes the tables of ``inputs`` as DataFrames by name (a per-run plot takes the run
    folder first), and the plot's options (``workflow/rules/plots.smk``, ``PLOT_OPTIONS``)."""
    inputs: tuple[str, ...]
    """The tables it reads (keys of :data:`TABLES`)."""
    caption: str
    """What it shows, in reStructuredText (Snakemake's report; the HTML report under the image). ``{run}``: the
    run of a per-run plot."""
    category: str
    """Its category in Snakemake's report."""
    section: str | None = None
    """The section of the HTML report that embeds it (:data:`REPORT_SECTIONS`); None: not embedded. A per-run
    plot is linked from the run table instead."""
    per_run: bool = False
    """One PNG per training run (it reads the run folder, e.g. ``metrics.jsonl``)."""

    def path(self, run: str | None = None, suffix: str = ".png") -> str:
        """Where it is written, relative to ``results/<scale>/`` (its log: the same under ``logs/<scale>/``, with
        ``suffix=".log"``)."""
        return f"plots/{self.name}/{run}{suffix}" if self.per_run else f"plots/{self.name}{suffix}"

    def caption_for(self, run: str | None = None) -> str:
        """The caption, with the run of a per-run plot filled in."""
        return self.caption.replace("{run}", run) if run is not None else self.caption


PLOTS: tuple[Plot, ...] = (
    Plot("curves", run_curves_figure, ("runs",), per_run=True, category="Training curves",
         caption="Training curves of run ``{run}``: denoising MSE (noise space), task MSE at the evaluation steps "
         "(EMA weights; ``_raw``: raw weights) against the ``val`` predict-mean baseline, the losses, the energies "
         "of positives and negatives, the contrastive saturation ``frac_sat`` and the gradient field. Dashed "
         "vertical lines mark a divergence or collapse found by the summary's diagnosis (``runs.csv``). Axis "
         "labels are the column names of ``metrics.jsonl``."),
    Plot("ablation", ablation_figure, ("summary", "runs"), section="ablation", category="Ablations",
         caption="Ablation: ``val_task_mse`` and ``val_harder_task_mse`` (EMA weights, last evaluation) per "
         "experiment, mean ± one std over seeds, one dot per seed; bar colour is the experiment's status. The "
         "trivial baselines of each split (predict zero, predict the mean inverse) are horizontal lines. Which "
         "differences are significant is in the findings (Welch's t-test, Holm-Bonferroni over the family of "
         "comparisons)."),
    Plot("sweeps", sweeps_figure, ("summary",), section="sweeps", category="Ablations",
         caption="Parameter sweeps: ``val_task_mse`` (EMA weights, last evaluation; mean ± one std over seeds) "
         "against each swept key of each sweep, one line per combination of the other swept keys; a log axis "
         "when the swept values span more than 10x."),
    Plot("cross_eval", cross_eval_figure, ("cross_eval", "runs"), category="Cross-evaluation",
         caption="Cross-evaluation per experiment: every experiment (rows, EMA and raw weights) under every "
         "evaluation protocol and split (columns); each cell is the mean ± std over the experiment's seeds of "
         "each seed's last checkpoint (``task_mse``; ``denoise_mse`` for the ``denoise`` protocol). The colour is "
         "a log scale per column. Every checkpoint and milestone is in ``cross_eval.csv``."),
    Plot("inference_sweep", inference_sweep_figure, ("inference_sweep",), section="inference-sweep",
         category="Landscape",
         caption="Inference-steps sweep of each run's last checkpoint (EMA weights): task MSE, the share of "
         "rejected gradient steps and the share of energy-monotone paths against K, the inference gradient steps "
         "per diffusion level; mean ± std over seeds, one line per experiment."),
)
"""Every plot of the pipeline. Adding one: its figure function above, and one entry here."""


def _check_registry(plots: Sequence[Plot]) -> None:
    names = [p.name for p in plots]
    for p in plots:
        where = f"ired.reporting.plots.PLOTS: plot {p.name!r}"
        if names.count(p.name) > 1:
            raise ValueError(f"{where}: the name is used twice")
        unknown = [t for t in p.inputs if t not in TABLES]
        if unknown:
            raise ValueError(f"{where}: unknown input table(s) {unknown} (allowed: {', '.join(TABLES)})")
        if p.section is not None and (p.section not in REPORT_SECTIONS or p.per_run):
            raise ValueError(f"{where}: section {p.section!r} is not one of {', '.join(REPORT_SECTIONS)} "
                             "(a per-run plot has none: the run table links it)")


_check_registry(PLOTS)


def plot_files(out: str | Path, runs: Iterable[str], per_run: bool | None = None) -> list[str]:
    """The PNGs of every registered plot under ``out`` (``results/<scale>``): one per plot, one per run of a
    per-run plot; ``per_run``: only the per-run (True) or per-experiment (False) plots."""
    runs = list(runs)
    return [f"{out}/{p.path(run)}" for p in PLOTS if per_run in (None, p.per_run)
            for run in (runs if p.per_run else [None])]


def plot_named(name: str) -> Plot:
    """The registered plot ``name``; a one-line error listing the registered names otherwise."""
    for p in PLOTS:
        if p.name == name:
            return p
    raise ValueError(f"no plot {name!r} in ired.reporting.plots.PLOTS (plots: {', '.join(p.name for p in PLOTS)})")


def render(
    name: str,
    out_png: str | Path,
    tables: Mapping[str, "pd.DataFrame | str | Path"],
    run_dir: str | Path | None = None,
    **options: Any,
) -> Path:
    """Draw the registered plot ``name`` from its tables (paths or DataFrames, by the names of :data:`TABLES`;
    a missing or empty file is an empty table) and write it as PNG; a per-run plot also takes its run folder."""
    plot = plot_named(name)
    absent = [t for t in plot.inputs if t not in tables]
    if absent:
        raise ValueError(f"plot {name!r}: input table(s) {absent} not given (it reads {', '.join(plot.inputs)})")
    frames = {t: _frame(tables[t]) for t in plot.inputs}
    if plot.per_run:
        if run_dir is None:
            raise ValueError(f"plot {name!r} is drawn per run: give its run folder")
        return save_png(plot.draw(run_dir, **frames, **options), out_png)
    return save_png(plot.draw(**frames, **options), out_png)


# --------------------------------------------------------------------------------------------------


def _frame(data: "pd.DataFrame | str | Path") -> "pd.DataFrame":
    import pandas as pd

    if isinstance(data, (str, Path)):
        p = Path(data)
        return pd.read_csv(p) if p.is_file() and p.stat().st_size else pd.DataFrame()
    return data
