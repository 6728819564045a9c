"""Figures of the evaluation tables: the per-experiment cross-eval heatmap (plot ``cross_eval``) and the
inference-steps sweep (plot ``inference_sweep``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ired.reporting.columns import mean_of, std_of
from ired.reporting.cross_eval import SPLIT_ORDER
from ired.reporting.figure_canvas import all_positive, colour_map, new_figure, ordered_labels, say
from ired.reporting.formatting import to_float

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------------
# Cross-eval heatmap
# --------------------------------------------------------------------------------------------------



def cross_eval_figure(cross_eval: pd.DataFrame, runs: pd.DataFrame | None = None) -> Figure:
    """Heatmap of the cross-evaluation per experiment: rows experiment x weights, columns protocol x split,
    each cell the mean ± std over the experiment's seeds (:func:`ired.reporting.cross_eval.cross_eval_by_experiment`:
    each seed's last checkpoint), annotated. One log colour scale per column, so a column of ``denoise_mse`` (another
    definition) or of the harder split does not flatten the others; missing combinations are grey and marked
    "-". ``runs`` (``runs.csv``) maps runs to experiments; without it each run is its own row.
    """
    import numpy as np

    from ired.reporting.cross_eval import cross_eval_by_experiment

    agg = cross_eval_by_experiment(cross_eval, runs)
    if not len(agg):
        fig = new_figure(8, 3)
        say(fig.subplots(), "no cross-eval results (results/cross_eval.csv is empty or missing)")
        return fig
    row_keys = list(dict.fromkeys(zip(agg["experiment"], agg["weights"], strict=True)))
    col_keys = list(dict.fromkeys(zip(agg["protocol"], agg["split"], strict=True)))
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
    fig = new_figure(3.5 + 1.3 * len(col_keys), 2.0 + 0.32 * len(row_keys))
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(shade), cmap=colour_map(), vmin=0, vmax=1, aspect="auto")
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


# --------------------------------------------------------------------------------------------------
# Inference-steps sweep (landscape measurements)
# --------------------------------------------------------------------------------------------------


def inference_sweep_figure(inference_sweep: pd.DataFrame, experiments: Sequence[str] | None = None) -> Figure:
    """Task MSE, rejected share and energy monotonicity against K, the inference gradient steps per level:
    one row of three panels per split, one line per experiment (mean over seeds, error bars one std).

    ``inference_sweep``: ``results/inference_sweep.csv`` (:mod:`ired.reporting.inference_sweep`); ``experiments``: which
    to draw, in this order (None: all). Axis labels are the summary's column names without the K: ``val_task_mse@K``.
    """
    from ired.reporting.inference_sweep import SWEEP_METRICS, sweep_by_experiment

    long = sweep_by_experiment(inference_sweep)
    if experiments is not None and len(long):
        long = long[long["experiment"].isin(list(experiments))]
    splits = ordered_labels(long["split"], SPLIT_ORDER) if len(long) else []
    fig = new_figure(15.0, 4.2 * max(1, len(splits)))
    if not splits:
        say(fig.subplots(), "no inference sweep rows for the chosen experiments "
                             "(results/inference_sweep.csv is empty or has none of them)")
        return fig
    axes = fig.subplots(len(splits), len(SWEEP_METRICS), squeeze=False)
    names = [e for e in (experiments or []) if e in set(long["experiment"])] or list(dict.fromkeys(long["experiment"]))
    for row_axes, split in zip(axes, splits, strict=True):
        part = long[long["split"] == split]
        for ax, metric in zip(row_axes, SWEEP_METRICS, strict=True):
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
            if metric == "task_mse" and all_positive(values) and max(values) / min(values) > 10:
                ax.set_yscale("log")
            ax.set_title(f"{split}_{metric}@K", fontsize=10)
            ax.grid(alpha=0.3)
        row_axes[0].legend(fontsize=7, loc="best", framealpha=0.9)
    fig.suptitle("inference-steps sweep of each run's last checkpoint (EMA weights; mean ± std over seeds; "
                 "dashed: q-experiments)", fontsize=11)
    return fig
