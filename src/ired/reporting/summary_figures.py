"""Figures of the summary table: the ablation bars (plot ``ablation``) and the parameter sweeps (plot ``sweeps``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ired.reporting.columns import ABLATION_COLUMNS, SWEEP, baseline_of, mean_of, n_of, std_of, sweep_keys
from ired.reporting.figure_canvas import STATUS_COLOURS, all_positive, colour_map, new_figure, say
from ired.reporting.formatting import to_float

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------------
# Ablation bars
# --------------------------------------------------------------------------------------------------


def ablation_figure(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> Figure:
    """One panel per ablation column of the summary (:data:`ired.reporting.columns.ABLATION_COLUMNS`: ``val_task_mse``
    and ``val_harder_task_mse``, EMA weights) with a bar per experiment: mean over seeds, error bars one std,
    dots for single seeds (``runs``), bar colour = status; the trivial baselines (predict zero, predict mean) of
    the column's split as horizontal lines."""
    from matplotlib.patches import Patch

    n = len(summary)
    fig = new_figure(max(10.0, 0.9 * n + 4.0), 6.5)
    axes = fig.subplots(1, len(ABLATION_COLUMNS), squeeze=False)[0]
    recs = summary.to_dict("records") if n else []
    for ax, column in zip(axes, ABLATION_COLUMNS, strict=True):
        col, split = column.name, column.split
        means = [to_float(r.get(mean_of(col))) for r in recs]
        stds = [to_float(r.get(std_of(col))) for r in recs]
        if not any(math.isfinite(m) for m in means):
            say(ax, f"{col}: no evaluated run (null in every summary row)")
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
        for key, style, label in (("predict_zero_mse", ":", "predict zero"),
                                  ("predict_mean_mse", "--", "predict mean")):
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


def sweeps_figure(summary: pd.DataFrame, metric: str = "val_task_mse") -> Figure:
    """A metric (``metric``: a ``mean_std`` column of the summary, EMA ``val_task_mse`` by default) against each
    swept key of each parameter sweep: one row of panels per sweep, one panel per swept key with more than one
    value, one line per combination of the other swept keys (mean over seeds, error bars one std); a log x axis
    when the values span more than 10x. The summary groups the experiments of a sweep (columns ``sweep`` and
    one per swept key, :mod:`ired.reporting.columns`)."""
    from ired.reporting.formatting import num

    named = summary[summary[SWEEP].notna()] if len(summary) and SWEEP in summary.columns else summary.iloc[0:0]
    sweeps = list(dict.fromkeys(named[SWEEP].astype(str))) if len(named) else []
    if not sweeps:
        fig = new_figure(8, 2.5)
        say(fig.subplots(), "no parameter sweep in this study (no run's config.yaml has a `sweep` key)")
        return fig
    if mean_of(metric) not in summary.columns:
        raise ValueError(f"sweeps plot: metric {metric!r} is not a column of the summary "
                         f"(no {mean_of(metric)}); choose one of the summary's *_mean columns")
    keys = sweep_keys(summary.columns)
    panels: list[tuple[str, pd.DataFrame, list[str], list[str]]] = []
    for name in sweeps:
        rows = named[named[SWEEP].astype(str) == name]
        own = [k for k in keys if rows[k].notna().any()]
        xs = [k for k in own if rows[k].nunique() > 1] or own[:1]
        panels.append((name, rows, own, xs))
    ncols = max(len(xs) for *_, xs in panels)
    fig = new_figure(max(7.0, 6.0 * ncols), 4.6 * len(panels))
    grid = fig.subplots(len(panels), ncols, squeeze=False)
    weights = "raw" if metric.endswith("_raw") else "EMA"
    for axes, (name, rows, own, xs) in zip(grid, panels, strict=True):
        for ax in axes[len(xs):]:
            ax.set_visible(False)
        for ax, key in zip(axes, xs, strict=False):
            others = [k for k in own if k != key]
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for r in rows.to_dict("records"):
                groups.setdefault(tuple(r[k] for k in others), []).append(r)
            xpos, labels = _sweep_x(list(rows[key]))
            at = dict(zip(map(str, rows[key]), xpos, strict=True))
            many = len(groups) > _MAX_LEGEND
            cmap = colour_map()
            values: list[float] = []
            for i, (combo, pts) in enumerate(groups.items()):
                pts = sorted(pts, key=lambda r: at[str(r[key])])
                x = [at[str(r[key])] for r in pts]
                y = [to_float(r.get(mean_of(metric))) for r in pts]
                err = [s if math.isfinite(s) else 0.0 for s in (to_float(r.get(std_of(metric))) for r in pts)]
                n = max((int(v) for r in pts if math.isfinite(v := to_float(r.get(n_of(metric))))), default=0)
                label = ", ".join(f"{k}={num(v)}" for k, v in zip(others, combo, strict=True)) or metric
                ax.errorbar(x, y, yerr=err, marker="o", ms=4, lw=1.0 if many else 1.5, capsize=3,
                            color=cmap(i / max(1, len(groups) - 1)) if many else None,
                            label=None if many else f"{label} ({n} seed{'s' if n != 1 else ''})")
                values += [v for v in y if math.isfinite(v)]
            if labels is not None:
                ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            elif all_positive(xpos) and max(xpos) / min(xpos) > 10:
                ax.set_xscale("log")
            if all_positive(values) and max(values) / min(values) > 10:
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
