"""Plots of the pipeline: per-run training curves, the ablation bar chart, the per-experiment cross-eval heatmap
and the inference-steps sweep.

Figures are built with :class:`matplotlib.figure.Figure` (the Agg canvas, no pyplot global state, no display)
and written as PNG. Axis labels are the metric column names of the contract (``val_task_mse`` on the log is
``val_task_mse`` on the axis). A panel whose columns are null in every row says so in words instead of being
left blank, so a denoise-only run's ``frac_sat`` panel reads "null in every row", not as an empty plot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.diagnostics import Finding, as_rows, series

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
PROTOCOL_ORDER = ("current", "reference", "denoise")
SPLIT_ORDER = ("train_subset", "val", "val_harder")

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


def plot_training_curves(
    metrics: "pd.DataFrame | Iterable[Mapping[str, Any]]",
    out_png: str | Path,
    title: str = "",
    findings: Sequence[Finding] = (),
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Write the training curves of one run's metrics rows to ``out_png`` (1500 x 850 px)."""
    return save_png(training_curves_figure(metrics, title, findings, baselines), out_png)


def plot_run_curves(run_dir: str | Path, out_png: str | Path, cross_eval_csv: str | Path | None = None) -> Path:
    """Training curves of a run folder, with its findings marked (the pipeline's per-run plot target)."""
    from ired.run_record import RunSpec, load_run, read_cross_eval

    spec = RunSpec(experiment=Path(run_dir).name, seed=0, run_dir=Path(run_dir))
    rec = load_run(spec, read_cross_eval(cross_eval_csv))
    title = f"{spec.run_id}: {rec.run_status}"
    return plot_training_curves(rec.rows, out_png, title, rec.findings, rec.baselines)


# --------------------------------------------------------------------------------------------------
# Ablation bars
# --------------------------------------------------------------------------------------------------


def ablation_figure(summary: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> "Figure":
    """Bars of ``val_task_mse`` and ``val_harder_task_mse`` (EMA weights) per experiment: mean over seeds,
    error bars one std, dots for single seeds, bar colour = status; the trivial baselines (predict zero,
    predict mean) of each split as horizontal lines."""
    from matplotlib.patches import Patch

    n = len(summary)
    fig = _figure(max(10.0, 0.9 * n + 4.0), 6.5)
    axes = fig.subplots(1, 2)
    recs = summary.to_dict("records") if n else []
    for ax, split, col in zip(axes, ("val", "val_harder"), ("val_task_mse", "val_harder_task_mse")):
        means = [_f(r.get(f"{col}_mean")) for r in recs]
        stds = [_f(r.get(f"{col}_std")) for r in recs]
        if not any(math.isfinite(m) for m in means):
            _say(ax, f"{col}: no evaluated run (null in every summary row)")
            ax.set_title(f"{col} (EMA weights)")
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
            bs = [_f(r.get(f"{split}_{key}")) for r in recs]
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
        ax.set_title(f"{col} (EMA weights, mean ± std over seeds)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    present = [s for s in STATUS_COLOURS if any(r.get("status") == s for r in recs)]
    if present:
        handles = [Patch(color=STATUS_COLOURS[s], label=s) for s in present]
        fig.legend(handles=handles, title="bar colour = status", fontsize=8, title_fontsize=8,
                   loc="outside lower center", ncol=len(handles))
    return fig


def plot_ablation(
    summary: "pd.DataFrame | str | Path", out_png: str | Path, runs: "pd.DataFrame | str | Path | None" = None
) -> Path:
    """Write the ablation bar chart from the summary table (DataFrame or ``summary.csv``) and, for seed dots,
    the per-run table (DataFrame or ``runs.csv`` from :func:`ired.summary.write_summary`)."""
    return save_png(ablation_figure(_frame(summary), _frame(runs) if runs is not None else None), out_png)


# --------------------------------------------------------------------------------------------------
# Cross-eval heatmap
# --------------------------------------------------------------------------------------------------


def _ordered(values: Iterable[Any], order: Sequence[str]) -> list[str]:
    vals = {str(v) for v in values}
    return [o for o in order if o in vals] + sorted(vals - set(order))


def cross_eval_figure(cross_eval: "pd.DataFrame", runs: "pd.DataFrame | None" = None) -> "Figure":
    """Heatmap of the cross-evaluation per experiment: rows experiment x weights, columns protocol x split,
    each cell the mean ± std over the experiment's seeds (:func:`ired.report.cross_eval_by_experiment`: each
    seed's last checkpoint), annotated. One log colour scale per column, so a column of ``denoise_mse`` (another
    definition) or of the harder split does not flatten the others; missing combinations are grey and marked
    "-". ``runs`` (``runs.csv``) maps runs to experiments; without it each run is its own row.
    """
    import numpy as np

    from ired.report import cross_eval_by_experiment

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


def plot_cross_eval_heatmap(
    cross_eval: "pd.DataFrame | str | Path", out_png: str | Path, runs: "pd.DataFrame | str | Path | None" = None
) -> Path:
    """Write the per-experiment cross-eval heatmap from ``results/cross_eval.csv`` and ``results/runs.csv``
    (paths or DataFrames)."""
    return save_png(cross_eval_figure(_frame(cross_eval), _frame(runs) if runs is not None else None), out_png)


# --------------------------------------------------------------------------------------------------
# Inference-steps sweep (landscape measurements)
# --------------------------------------------------------------------------------------------------


def inference_sweep_figure(sweep: "pd.DataFrame", experiments: Sequence[str] | None = None) -> "Figure":
    """Task MSE, rejected share and energy monotonicity against K, the inference gradient steps per level:
    one row of three panels per split, one line per experiment (mean over seeds, error bars one std).

    ``sweep``: ``results/inference_sweep.csv`` (:mod:`ired.landscape`); ``experiments``: which to draw, in this
    order (None: all). Axis labels are the summary's column names without the K: ``val_task_mse@K``.
    """
    from ired.landscape import SWEEP_METRICS, sweep_by_experiment

    long = sweep_by_experiment(sweep)
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
                means = [_f(v) for v in e[f"{metric}_mean"]]
                stds = [_f(v) if math.isfinite(_f(v)) else 0.0 for v in e[f"{metric}_std"]]
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


def plot_inference_sweep(
    sweep: "pd.DataFrame | str | Path", out_png: str | Path, experiments: Sequence[str] | None = None
) -> Path:
    """Write the inference-sweep figure from ``results/inference_sweep.csv`` (path or DataFrame)."""
    return save_png(inference_sweep_figure(_frame(sweep), experiments), out_png)


# --------------------------------------------------------------------------------------------------


def _frame(data: "pd.DataFrame | str | Path") -> "pd.DataFrame":
    import pandas as pd

    if isinstance(data, (str, Path)):
        p = Path(data)
        return pd.read_csv(p) if p.is_file() and p.stat().st_size else pd.DataFrame()
    return data


def _f(v: Any) -> float:
    try:
        out = float(v)
    except (TypeError, ValueError):
        return math.nan
    return out
