"""Rows of a run's metrics log as the diagnosis reads them: in step order, finite values, and the rows it quotes
as evidence (JSON-ready); two small ratios of the evidence.

Pure: rows in, rows or numbers out. The detectors (:mod:`ired.reporting.training_detectors`,
:mod:`ired.reporting.evaluation_detectors`) and the training-curve figures read rows through it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:  # pandas is only needed when a caller hands us a DataFrame
    import pandas as pd

Rows = list[dict[str, Any]]


def as_rows(metrics: pd.DataFrame | Iterable[Mapping[str, Any]]) -> Rows:
    """Metrics rows (list of dicts or DataFrame) as a list of dicts sorted by step, one row per step.

    A step logged twice (a resumed run whose log was not truncated) keeps its last row.
    """
    if hasattr(metrics, "to_dict") and hasattr(metrics, "columns"):
        records = metrics.to_dict("records")
    else:
        records = [dict(r) for r in metrics]
    by_step: dict[Any, dict[str, Any]] = {}
    loose: Rows = []
    for rec in records:
        step = rec.get("step")
        if is_number(step):
            by_step[int(step)] = rec
        else:
            loose.append(rec)
    return [by_step[s] for s in sorted(by_step)] + loose


def value(row: Mapping[str, Any], column: str) -> float | None:
    """A finite number from a row, or None when the column is absent, null, NaN or infinite."""
    v = row.get(column)
    if not is_number(v):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def series(rows: Rows, column: str) -> list[tuple[int, float, dict[str, Any]]]:
    """(step, value, row) for every row where ``column`` has a finite value."""
    out = []
    for row in rows:
        v = value(row, column)
        if v is not None and is_number(row.get("step")):
            out.append((int(row["step"]), v, row))
    return out


def is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    return obj


def raw_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A log row quoted as evidence: JSON-ready, null columns dropped to keep it readable."""
    return {k: jsonable(v) for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}


def ratio(a: float, b: float) -> float:
    """a / b, inf when b is 0 and a is not."""
    if b == 0:
        return math.inf if a else 1.0
    return a / b


def fold_change(a: float, b: float) -> float:
    """How many times larger the larger of two positive numbers is (>= 1)."""
    lo, hi = sorted((abs(a), abs(b)))
    return ratio(hi, lo)

def unique_rows(rows: Iterable[Mapping[str, Any]]) -> Rows:
    out: Rows = []
    seen: set[int] = set()
    for r in rows:
        if id(r) not in seen:
            seen.add(id(r))
            out.append(raw_row(r))
    return out


def rows_around(rows: Rows, idx: int, n: int) -> Rows:
    lo = max(0, min(idx - n // 2, len(rows) - n))
    return rows[lo : lo + n]


def nearest_index(rows: Rows, step: int) -> int | None:
    steps = [(i, s) for i, r in enumerate(rows) if is_number(s := r.get("step"))]
    if not steps:
        return None
    return min(steps, key=lambda p: abs(p[1] - step))[0]
