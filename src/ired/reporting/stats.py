"""Two-sample statistics for comparing experiments over seeds: Welch's t-test, its confidence interval, and
the Holm-Bonferroni correction of a family of p-values.

Student's t distribution (tail probabilities, quantiles; non-integer degrees of freedom, as Welch's test gives)
is ``scipy.stats.t``; the tests check it against published table values. Holm's correction is the few lines
below. scipy is imported when a test is computed, not with the module (``ired``'s command line stays light).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if not df > 0 or math.isnan(t):
        return math.nan
    from scipy.stats import t as student_t

    return float(2.0 * student_t.sf(abs(t), df))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (0 < q < 1)."""
    if not 0.0 < q < 1.0 or not df > 0:
        return math.nan
    from scipy.stats import t as student_t

    return float(student_t.ppf(q, df))


@dataclass(frozen=True)
class WelchResult:
    """Welch's two-sample t-test of mean_a - mean_b; every field NaN when it cannot be computed."""

    diff: float
    t: float
    df: float
    p: float
    ci_low: float
    ci_high: float
    level: float = 0.95


def welch_test(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int, level: float | None = 0.95
) -> WelchResult:
    """Welch's t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b), its Welch-Satterthwaite degrees of
    freedom, the two-sided p-value and the ``level`` confidence interval of the difference of means.

    From summary statistics (sample std, ``n`` seeds). NaN everywhere but ``diff`` with fewer than two seeds in
    a group, a non-finite input, or zero variance in both groups.
    """
    nan = math.nan
    level_ = nan if level is None else level
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (mean_a, std_a, mean_b, std_b))
    diff = mean_a - mean_b if all(isinstance(v, (int, float)) for v in (mean_a, mean_b)) else nan
    if n_a < 2 or n_b < 2 or not finite:
        return WelchResult(diff, nan, nan, nan, nan, nan, level_)
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    if va + vb == 0:
        return WelchResult(diff, nan, nan, nan, nan, nan, level_)
    se = math.sqrt(va + vb)
    t = diff / se
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    p = t_two_sided_p(t, df)
    if level is None:
        return WelchResult(diff, t, df, p, nan, nan, nan)
    half = t_quantile(0.5 + level / 2.0, df) * se
    return WelchResult(diff, t, df, p, diff - half, diff + half, level)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: sorted ascending, the i-th smallest (0-based)
    becomes max over j <= i of min(1, (m - j) p_(j)), m the number of finite p-values. Rejecting where the
    adjusted p < alpha controls the family-wise error rate at alpha. NaN stays NaN and does not count in m."""
    idx = [i for i, p in enumerate(p_values) if isinstance(p, (int, float)) and math.isfinite(p)]
    m = len(idx)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out
