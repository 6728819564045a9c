"""The cross-eval table, in one place: its schema, how it is built, read, split per run and aggregated.

Every evaluation of a checkpoint under a protocol, on a split, with EMA or raw weights is one JSON object
(format in ARCHITECTURE.md); :func:`aggregate_cross_eval` concatenates them into ``results/<scale>/cross_eval.csv``
(:data:`CROSS_EVAL_COLUMNS` first, protocol-specific extras after, one row per :data:`KEY`). Its readers:
:func:`read_cross_eval` (the CSV), :func:`cross_eval_rows_for` (the rows of one run), :func:`cross_eval_metric`
(the number of a row), :func:`baselines_from_cross_eval` (the trivial baselines per split) and
:func:`cross_eval_by_experiment` (mean ± std over seeds per experiment x weights x protocol x split).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.reporting.formatting import finite

if TYPE_CHECKING:
    import pandas as pd

CROSS_EVAL_COLUMNS: tuple[str, ...] = (
    "checkpoint",
    "run",
    "milestone",
    "protocol",
    "protocol_version",
    "split",
    "weights",
    "task_mse",
    "denoise_mse",
    "n_problems",
    "predict_zero_mse",
    "predict_mean_mse",
)
"""Leading columns of ``cross_eval.csv``; protocol-specific extras follow, sorted by name, then ``source``."""
REQUIRED: tuple[str, ...] = ("checkpoint", "protocol", "split", "weights")
"""Keys every evaluation result must have."""
KEY: tuple[str, ...] = ("checkpoint", "weights", "protocol", "split")
"""One row per value of these columns; the CSV is sorted by them."""
BASELINE_KEYS: tuple[str, ...] = ("predict_zero_mse", "predict_mean_mse")
"""The trivial baselines every row carries for its split."""
PROTOCOL_ORDER: tuple[str, ...] = ("current", "reference", "denoise")
"""How protocols are ordered in tables and plots (others after, by name)."""
SPLIT_ORDER: tuple[str, ...] = ("train_subset", "val", "val_harder")
"""How splits are ordered in tables and plots (others after, by name)."""
PREFERRED_MILESTONES: tuple[str, ...] = ("last", "final", "external")
"""The checkpoint of a run that the per-experiment cross-eval uses: the first of these milestones the run has
(else all its rows). Every milestone stays in ``cross_eval.csv``."""
AGGREGATE_COLUMNS: tuple[str, ...] = ("experiment", "weights", "protocol", "split", "metric", "mean", "std", "n",
                                      "milestone")
"""Columns of :func:`cross_eval_by_experiment`."""

Rows = list[dict[str, Any]]


# --------------------------------------------------------------------------------------------------
# Building and reading the table
# --------------------------------------------------------------------------------------------------


def aggregate_cross_eval(json_paths: Iterable[str | Path], out_csv: str | Path | None = None) -> pd.DataFrame:
    """Concatenate evaluation result JSONs into one table, one row per checkpoint x weights x protocol x split.

    A file missing a key column, or with neither ``task_mse`` nor ``denoise_mse``, is an error naming the file;
    so is the same (checkpoint, weights, protocol, split) twice. Nested extras are stored as JSON text. Rows are
    sorted by the key so the CSV is stable. Writes ``out_csv`` when given (header only when there is no file).
    """
    import pandas as pd

    rows: Rows = []
    seen: dict[tuple[Any, ...], str] = {}
    for p in json_paths:
        p = Path(p)
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read evaluation result ({exc.__class__.__name__}: {exc})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{p}: evaluation result must be a JSON object, got {type(d).__name__}")
        absent = [k for k in REQUIRED if k not in d]
        if absent:
            raise ValueError(f"{p}: evaluation result lacks {absent}")
        if d.get("task_mse") is None and d.get("denoise_mse") is None:
            raise ValueError(f"{p}: evaluation result has neither task_mse nor denoise_mse")
        key = tuple(str(d[k]) for k in KEY)
        if key in seen:
            raise ValueError(f"{p}: duplicate evaluation {dict(zip(KEY, key, strict=True))} (also in {seen[key]})")
        seen[key] = str(p)
        row = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in d.items()}
        row["source"] = str(p)
        rows.append(row)
    extras = sorted({k for r in rows for k in r} - set(CROSS_EVAL_COLUMNS) - {"source"})
    df = pd.DataFrame(rows, columns=[*CROSS_EVAL_COLUMNS, *extras, "source"])
    if len(df):
        df = df.sort_values(list(KEY), key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)
    if out_csv is not None:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out_csv, index=False)
    return df


def read_cross_eval(path: str | Path | None) -> pd.DataFrame:
    """``results/<scale>/cross_eval.csv`` as a DataFrame; an absent path or file gives an empty one."""
    import pandas as pd

    if path is None or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_csv(path)


def records(rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None) -> Rows:
    """Cross-eval rows (a DataFrame or mappings) as a list of dicts."""
    if rows is None:
        return []
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        return rows.to_dict("records")
    return [dict(r) for r in rows]


def cross_eval_rows_for(
    cross_eval: pd.DataFrame | None, run_dir: str | Path, run_id: str, config_name: str | None = None
) -> Rows:
    """The cross-eval rows of one run, by the first rule that matches any row: the ``checkpoint`` path lies
    inside the run folder; ``run`` equals ``run_id``; ``run`` equals the run config's ``name`` (what
    ``ired.evaluation.evaluate`` writes; ambiguous when seeds share a name, so it comes last)."""
    if cross_eval is None or len(cross_eval) == 0:
        return []
    root = str(Path(run_dir).resolve())
    recs = cross_eval.to_dict("records")

    def inside(r: Mapping[str, Any]) -> bool:
        ckpt = r.get("checkpoint")
        return isinstance(ckpt, str) and str(Path(ckpt).resolve()).startswith(root + "/")

    for rule in (
        inside,
        lambda r: str(r.get("run")) == run_id,
        lambda r: config_name is not None and str(r.get("run")) == config_name,
    ):
        found = [r for r in recs if rule(r)]
        if found:
            return found
    return []


def _value(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    return float(v) if finite(v) else None


def cross_eval_metric(row: Mapping[str, Any]) -> float | None:
    """The number of one cross-eval row: ``task_mse``, or ``denoise_mse`` for the denoise protocol."""
    v = _value(row, "task_mse")
    return v if v is not None else _value(row, "denoise_mse")


def baselines_from_cross_eval(
    cross_eval: pd.DataFrame | Sequence[Mapping[str, Any]] | None,
) -> dict[str, dict[str, float]]:
    """Trivial baselines per split from cross-eval rows: ``{split: {"predict_zero_mse", "predict_mean_mse"}}``.

    Every evaluation result carries the baselines of its split (ARCHITECTURE.md); the median over rows is
    taken so that one odd row cannot move them.
    """
    acc: dict[str, dict[str, list[float]]] = {}
    for r in records(cross_eval):
        split = r.get("split")
        if not isinstance(split, str):
            continue
        for key in BASELINE_KEYS:
            v = _value(r, key)
            if v is not None:
                acc.setdefault(split, {}).setdefault(key, []).append(v)
    return {s: {k: statistics.median(vs) for k, vs in d.items()} for s, d in acc.items()}


# --------------------------------------------------------------------------------------------------
# Per experiment
# --------------------------------------------------------------------------------------------------


def order_key(value: str, order: Sequence[str]) -> tuple[int, str]:
    """Sort key of a protocol or split: its place in ``order`` (:data:`PROTOCOL_ORDER`, :data:`SPLIT_ORDER`),
    unknown names after, by name."""
    return (order.index(value) if value in order else len(order), value)


def cross_eval_by_experiment(cross: pd.DataFrame | None, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per experiment x weights x protocol x split (:data:`AGGREGATE_COLUMNS`): ``metric``
    (``task_mse``; ``denoise_mse`` for the ``denoise`` protocol), ``mean``, ``std`` (sample std over seeds, NaN
    for one), ``n`` and ``milestone``.

    Each run contributes its checkpoint of :data:`PREFERRED_MILESTONES`; ``runs`` (``runs.csv``) maps a run to
    its experiment, and a run it does not know (an external checkpoint) is its own experiment.
    """
    import pandas as pd

    from ired.reporting.inference_sweep import mean_std

    cols = list(AGGREGATE_COLUMNS)
    if cross is None or not len(cross):
        return pd.DataFrame(columns=cols)
    to_exp = {}
    if runs is not None and len(runs) and {"run", "experiment"} <= set(runs.columns):
        to_exp = dict(zip(runs["run"].astype(str), runs["experiment"].astype(str), strict=True))
    recs = [r for r in cross.to_dict("records") if cross_eval_metric(r) is not None]
    by_run: dict[str, Rows] = {}
    for r in recs:
        by_run.setdefault(str(r.get("run") if isinstance(r.get("run"), str) else r.get("checkpoint")), []).append(r)
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    used: dict[tuple[str, str, str, str], set[str]] = {}
    for run, rows in by_run.items():
        have = {str(r.get("milestone")) for r in rows}
        pick = next((m for m in PREFERRED_MILESTONES if m in have), None)
        for r in rows:
            if pick is not None and str(r.get("milestone")) != pick:
                continue
            key = (to_exp.get(run, run), str(r.get("weights")), str(r.get("protocol")), str(r.get("split")))
            groups.setdefault(key, []).append(float(cross_eval_metric(r)))  # type: ignore[arg-type]
            used.setdefault(key, set()).add(str(r.get("milestone")))
    order = list(dict.fromkeys([*to_exp.values(), *sorted(k[0] for k in groups)]))

    def rank(key: tuple[str, str, str, str]) -> tuple[Any, ...]:
        exp, weights, protocol, split = key
        return (order.index(exp), weights != "ema", weights, order_key(protocol, PROTOCOL_ORDER),
                order_key(split, SPLIT_ORDER))

    out = []
    for key in sorted(groups, key=rank):
        mean, std = mean_std(groups[key])
        out.append(dict(zip(cols, (*key, "denoise_mse" if key[2] == "denoise" else "task_mse", mean, std,
                                   len(groups[key]), " ".join(sorted(used[key]))), strict=True)))
    return pd.DataFrame(out, columns=cols)
