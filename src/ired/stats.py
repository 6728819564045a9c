"""Two-sample statistics for comparing experiments over seeds: Welch's t-test, its confidence interval, and
the Holm-Bonferroni correction of a family of p-values.

Pure Python (no scipy in the dependencies): Student's t distribution is computed from the regularized
incomplete beta function, ``P(|T| > t) = I_{df/(df + t^2)}(df/2, 1/2)``, evaluated with its continued fraction
(modified Lentz method, accurate to ~1e-12 over the range used here); quantiles by bisection on it. The tests
check it against published table values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 500


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if not df > 0 or math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (0 < q < 1), by bisection."""
    if not 0.0 < q < 1.0 or not df > 0:
        return math.nan
    if q == 0.5:
        return 0.0
    target = 2.0 * min(q, 1.0 - q)  # two-sided tail mass beyond |t|
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > target:
        hi *= 2.0
        if hi > 1e12:
            break
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_two_sided_p(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    t = 0.5 * (lo + hi)
    return t if q > 0.5 else -t


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
