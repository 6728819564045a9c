"""The inference-steps sweep of every run, read from files and aggregated (reporting; imports no torch).

Is the landscape better shaped? :func:`ired.evaluation.evaluate.inference_sweep` runs the `current` protocol with K
gradient steps per diffusion level (K = 1, 5, 10, 20) on one checkpoint and reports ``task_mse``,
``rejected_frac`` and ``energy_monotone_frac`` per K; :func:`ired.evaluation.evaluate.write_run_sweep` writes one JSON
per run (the evaluation side). This module reads those JSONs: it concatenates them into
``results/inference_sweep.csv`` (:func:`aggregate_sweeps`), and aggregates over seeds per experiment
(:func:`sweep_by_experiment`), both as long rows for the plot and as summary columns named
``<split>_<metric>@K=<k>`` (:func:`sweep_summary_columns`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SWEEP_METRICS: tuple[str, ...] = ("task_mse", "rejected_frac", "energy_monotone_frac")
"""The per-K measurements of a sweep row (the same names as in :func:`ired.evaluation.evaluate.inference_sweep`)."""

SWEEP_DEFINITIONS: dict[str, str] = {
    "task_mse": "task MSE of the predicted A^-1 (protocol `current`) with K inference gradient steps per level",
    "rejected_frac": "share of the K inner gradient steps per level that raised the energy and were undone",
    "energy_monotone_frac": "share of level-to-level transitions where the t=0 energy of the running x0 estimate "
    "did not rise",
}

SWEEP_COLUMNS: tuple[str, ...] = (
    "experiment", "seed", "run", "checkpoint", "step", "split", "weights", "steps_per_level", "n_problems",
    *SWEEP_METRICS,
)
"""Columns of ``results/inference_sweep.csv``: one row per run x split x K."""


def sweep_column(split: str, metric: str, k: int) -> str:
    """The one name of a sweep measurement in the summary, the findings and the plot: ``val_task_mse@K=20``."""
    return f"{split}_{metric}@K={int(k)}"


def aggregate_sweeps(json_paths: Iterable[str | Path], out_csv: str | Path | None = None) -> pd.DataFrame:
    """Concatenate per-run sweep JSONs into one table (:data:`SWEEP_COLUMNS`), sorted by experiment, seed,
    split and K; write it to ``out_csv`` when given. A row without ``experiment`` takes its run name."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for p in json_paths:
        try:
            data = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read inference sweep ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(data, list):
            raise ValueError(f"{p}: an inference sweep must be a JSON list of rows, got {type(data).__name__}")
        for row in data:
            missing = [k for k in ("run", "split", "steps_per_level", "task_mse") if k not in row]
            if missing:
                raise ValueError(f"{p}: sweep row lacks {missing}")
            rows.append({"experiment": row.get("experiment", row["run"]), **row})
    df = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    if len(df):
        numeric = ("seed", "steps_per_level")
        df = df.sort_values(["experiment", "seed", "run", "split", "steps_per_level"], kind="stable",
                            key=lambda s: s if s.name in numeric else s.astype(str)).reset_index(drop=True)
    if out_csv is not None:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out_csv, index=False)
    return df


def read_sweep(path: str | Path | None) -> pd.DataFrame:
    """``results/inference_sweep.csv`` as a DataFrame; empty (with the columns) when None or missing."""
    import pandas as pd

    if path is None or not Path(path).is_file() or not Path(path).stat().st_size:
        return pd.DataFrame(columns=list(SWEEP_COLUMNS))
    return pd.read_csv(path)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std over seeds (std NaN for one seed; both NaN for none): the summary's aggregate too."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def sweep_by_experiment(sweep: pd.DataFrame) -> pd.DataFrame:
    """Long table, one row per experiment x split x K: ``<metric>_mean``, ``<metric>_std`` (sample std over
    seeds, NaN for one seed) and ``n_seeds``; experiments in order of first appearance in ``sweep``."""
    import pandas as pd

    out: list[dict[str, Any]] = []
    if len(sweep):
        order = list(dict.fromkeys(sweep["experiment"].astype(str)))
        for (exp, split, k), grp in sweep.groupby(
            [sweep["experiment"].astype(str), "split", "steps_per_level"], sort=False
        ):
            row: dict[str, Any] = {"experiment": exp, "split": split, "steps_per_level": int(k),
                                   "n_seeds": int(grp["run"].nunique())}
            for metric in SWEEP_METRICS:
                vals = [float(v) for v in grp[metric] if v is not None and not pd.isna(v)]
                row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std(vals)
            out.append(row)
        df = pd.DataFrame(out)
        df["_order"] = df["experiment"].map(order.index)
        return df.sort_values(["_order", "split", "steps_per_level"], kind="stable").drop(columns="_order") \
            .reset_index(drop=True)
    return pd.DataFrame(columns=["experiment", "split", "steps_per_level", "n_seeds",
                                 *(f"{m}_{s}" for m in SWEEP_METRICS for s in ("mean", "std"))])


def sweep_summary_columns(sweep: pd.DataFrame) -> pd.DataFrame:
    """Wide table, one row per experiment: ``<split>_<metric>@K=<k>_mean`` / ``_std`` for every split, metric
    and K of the sweep (the names of :func:`sweep_column`, as the summary's other ``_mean`` / ``_std`` columns)."""
    import pandas as pd

    long = sweep_by_experiment(sweep)
    rows: dict[str, dict[str, Any]] = {}
    for r in long.to_dict("records"):
        row = rows.setdefault(r["experiment"], {"experiment": r["experiment"]})
        for metric in SWEEP_METRICS:
            col = sweep_column(r["split"], metric, r["steps_per_level"])
            row[f"{col}_mean"], row[f"{col}_std"] = r[f"{metric}_mean"], r[f"{metric}_std"]
    return pd.DataFrame(list(rows.values()))


PATH_K = 5
"""K (inference steps per level, the reference's value) at which the headline ``rejected_frac`` and
``energy_monotone_frac`` are read; the full sweep is in ``results/inference_sweep.csv`` and its plot."""


def headline_columns(columns: Iterable[str]) -> list[str]:
    """The sweep columns a summary table shows (names without ``_mean`` / ``_std``), out of ``columns``:
    per split, ``task_mse`` at the smallest and the largest K, ``rejected_frac`` and ``energy_monotone_frac`` at
    :data:`PATH_K` (the largest K when the sweep has no PATH_K)."""
    present: dict[tuple[str, str], list[int]] = {}
    for c in columns:
        if "@K=" not in c or not c.endswith("_mean"):
            continue
        name, k = c[: -len("_mean")].split("@K=")
        for metric in SWEEP_METRICS:
            if name.endswith(f"_{metric}"):
                present.setdefault((name[: -len(metric) - 1], metric), []).append(int(k))
    shown: list[str] = []
    for split in dict.fromkeys(s for s, _ in present):
        ks = sorted(present.get((split, "task_mse"), []))
        shown += [sweep_column(split, "task_mse", k) for k in dict.fromkeys(ks[:1] + ks[-1:])]
        for metric in ("rejected_frac", "energy_monotone_frac"):
            ks = sorted(present.get((split, metric), []))
            if ks:
                shown.append(sweep_column(split, metric, PATH_K if PATH_K in ks else ks[-1]))
    return shown
