"""The statistics of the findings: every experiment against the baseline on every split, as a family of
comparisons, from ``results/<scale>/summary.csv`` only.

The test (:func:`compare_family`): Welch's two-sided t-test of every compared experiment against the baseline
on every split (:func:`ired.reporting.stats.welch_test`, from the summary's mean, sample std and number of
seeds); the p-values of that whole family (experiments x splits) are corrected with Holm-Bonferroni
(:func:`ired.reporting.stats.holm`), and a difference is significant when its adjusted p is below
:data:`ALPHA`, which keeps the family-wise error rate at 5%. A single seed leaves a comparison undecided. Only
experiments trained for the baseline's number of steps and with the baseline's seeds are compared
(:func:`comparable`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ired.core.errors import IredError
from ired.reporting.columns import mean_of, n_of, std_of
from ired.reporting.formatting import finite, g
from ired.reporting.stats import WelchResult, holm, welch_test

if TYPE_CHECKING:
    import pandas as pd

SPLITS: tuple[str, ...] = ("val", "val_harder")
DEFAULT_BASELINE = "q207"
ALPHA = 0.05
"""Family-wise error rate of the findings: a difference is significant when its Holm-adjusted p < ALPHA."""
CI_LEVEL = 0.95
"""Level of the confidence interval given with each effect (Welch, per comparison)."""


# --------------------------------------------------------------------------------------------------
# One comparison, and the family of comparisons
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One experiment against the baseline on one metric (``<split>_task_mse``, lower is better), with its
    Welch test and, once the family is known, the Holm-adjusted p-value."""

    experiment: str
    metric: str
    mean: float
    std: float
    n: int
    base_mean: float
    base_std: float
    base_n: int
    p_holm: float = math.nan

    @functools.cached_property
    def test(self) -> WelchResult:
        """Welch's test of mean - base_mean with its CI_LEVEL interval (computed once)."""
        return welch_test(self.mean, self.std, self.n, self.base_mean, self.base_std, self.base_n, CI_LEVEL)

    @property
    def p(self) -> float:
        """The uncorrected two-sided Welch p-value."""
        return welch_test(self.mean, self.std, self.n, self.base_mean, self.base_std, self.base_n, None).p

    @property
    def diff(self) -> float:
        return self.mean - self.base_mean

    @property
    def rel(self) -> float:
        return self.diff / self.base_mean if finite(self.base_mean) and self.base_mean else math.nan

    @property
    def significant(self) -> bool | None:
        """True when the Holm-adjusted p < ALPHA; None when no test was possible (one seed, no variance)."""
        return None if not finite(self.p_holm) else self.p_holm < ALPHA

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` (significant), ``not significant``, ``undecided (1 seed)`` or ``n/a``."""
        if self.significant is None:
            if not (finite(self.mean) and finite(self.base_mean)):
                return "n/a"
            return "undecided (1 seed)" if min(self.n, self.base_n) < 2 else "n/a"
        if not self.significant:
            return "not significant"
        return "better" if self.diff < 0 else "worse"


def summary_rows(summary: pd.DataFrame) -> dict[str, dict[str, Any]]:
    import pandas as pd

    return {
        str(r["experiment"]): {k: (None if (not isinstance(v, str) and pd.isna(v)) else v) for k, v in r.items()}
        for r in summary.to_dict("records")
    }


def seed_count(row: Mapping[str, Any], metric: str) -> int:
    v = row.get(n_of(metric), row.get("n_seeds"))
    return int(v) if finite(v) else 0


def as_number(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key)
    return float(v) if finite(v) else math.nan


def seed_set(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The seeds of a summary row (its ``seeds`` column, e.g. ``"0 1 2"``), sorted; None when not recorded."""
    v = row.get("seeds")
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():  # a single seed read back from CSV as a number
        v = int(v)
    return tuple(sorted(str(v).split(), key=lambda s: (len(s), s)))


def baseline_row(rows: Mapping[str, Mapping[str, Any]], baseline: str) -> Mapping[str, Any]:
    if baseline not in rows:
        raise IredError(f"baseline {baseline!r} is not in the summary (experiments: {', '.join(rows)})")
    return rows[baseline]


def compare(summary: pd.DataFrame, baseline: str, metric: str) -> list[Comparison]:
    """Every experiment of ``summary`` except the baseline against the baseline on ``metric`` (EMA ``_mean``),
    not yet corrected for multiplicity (``p_holm`` NaN): see :func:`compare_family`."""
    rows = summary_rows(summary)
    b = baseline_row(rows, baseline)
    return [
        Comparison(exp, metric, as_number(r, mean_of(metric)), as_number(r, std_of(metric)), seed_count(r, metric),
                   as_number(b, mean_of(metric)), as_number(b, std_of(metric)), seed_count(b, metric))
        for exp, r in rows.items()
        if exp != baseline
    ]


def compare_family(
    summary: pd.DataFrame, baseline: str, experiments: Sequence[str], splits: Sequence[str] = SPLITS
) -> dict[str, dict[str, Comparison]]:
    """``{split: {experiment: Comparison}}`` for ``experiments`` against the baseline on every split, with the
    Holm-adjusted p-value over the whole family (every experiment x every split with a test)."""
    wanted = set(experiments)
    by_split = {
        s: {c.experiment: c for c in compare(summary, baseline, f"{s}_task_mse") if c.experiment in wanted}
        for s in splits
    }
    keys = [(s, e) for s in splits for e in by_split[s]]
    adjusted = holm([by_split[s][e].p for s, e in keys])
    for (s, e), p in zip(keys, adjusted, strict=True):
        by_split[s][e] = dataclasses.replace(by_split[s][e], p_holm=p)
    return by_split


def comparable(summary: pd.DataFrame, baseline: str) -> tuple[list[str], list[str], list[str]]:
    """(compared, other budgets, other seeds): experiments trained for the baseline's ``steps`` with the
    baseline's seeds; the others as ``name (N steps)`` and ``name (seeds ...)``."""
    rows = summary_rows(summary)
    base = baseline_row(rows, baseline)
    steps, seeds = base.get("steps"), seed_set(base)
    compared, budgets, other_seeds = [], [], []
    for exp, r in rows.items():
        if exp == baseline:
            continue
        if r.get("steps") != steps:
            budgets.append(f"{exp} ({g(r.get('steps'))} steps)")
        elif seed_set(r) != seeds:
            other_seeds.append(f"{exp} (seeds {' '.join(seed_set(r) or ('?',))})")
        else:
            compared.append(exp)
    return compared, budgets, other_seeds
