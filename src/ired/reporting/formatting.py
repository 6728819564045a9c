"""How the reporting layer reads and writes a number: one definition each, for the summary, the findings, the
plots and the HTML report.

- :func:`finite`: a real, finite number (not a bool, not NaN or inf); what every table treats as a value.
- :func:`to_float`: anything to a float, NaN when it is not a number (a cell read back from a CSV, ``None``).
- :func:`g`: ``4`` significant digits, ``n/a`` for a missing value (an int is formatted too: ``12345 -> 1.234e+04``).
- :func:`num`: like :func:`g` for a float, but an int or a text cell is written as it is (``12345 -> 12345``).
- :func:`pm`: ``mean ± std`` (``mean`` alone when the std is missing, e.g. one seed).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeGuard

NA = "n/a"
"""How a missing number is written in every table and text of the reporting layer."""


# TypeGuard[float]: what passes is any real number (an int, a numpy scalar), used as a float is
def finite(v: Any) -> TypeGuard[float]:
    """True for a real, finite number; False for a bool, None, NaN, inf, a string."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def to_float(v: Any) -> float:
    """``float(v)``, or NaN when ``v`` is not a number (None, a word, an empty cell)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def g(v: Any, digits: int = 4) -> str:
    """A finite number with ``digits`` significant digits (``f"{v:.4g}"``); :data:`NA` otherwise."""
    return f"{v:.{digits}g}" if finite(v) else NA


def num(v: Any, digits: int = 4) -> str:
    """A table cell: a float with ``digits`` significant digits, :data:`NA` for None or NaN, anything else
    (an int, a word) as it is."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NA
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def pm(mean: Any, std: Any = None, digits: int = 4, std_digits: int = 2) -> str:
    """``mean ± std`` (mean with ``digits``, std with ``std_digits`` significant digits); the mean alone when the
    std is missing (one seed); :data:`NA` when the mean is."""
    if not finite(mean):
        return NA
    return g(mean, digits) + (f" ± {std:.{std_digits}g}" if finite(std) else "")
