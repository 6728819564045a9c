"""The IRED reference's numbers the parity check compares with: ``reference_numbers.yaml`` beside this file.

Each entry is a :class:`Check`: an objective and quantity of ``parity.md``, what the release gave (its mean
and sample std over seeds, or a text where it gave no number), where that comes from, and the range the
parity issue stated from it before ired's runs. :func:`load_checks` reads and checks the file; every error is
one line naming the file, the entry and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ired.core.errors import ConfigError
from ired.core.yamlio import read_mapping

REFERENCE_FILE = Path(__file__).with_name("reference_numbers.yaml")
KEYS = ("objective", "quantity", "reference", "source", "measured_by", "range")
SPREAD_KEYS = ("mean", "std", "seeds")
RANGE_KEYS = ("low", "high")


@dataclass(frozen=True)
class Check:
    objective: str
    quantity: str
    reference: str | tuple[float, float]  # the release's mean and sample std over seeds, or a text
    low: float | None
    high: float | None
    source: str
    measured_by: str

    @property
    def spread(self) -> tuple[float, float] | None:
        """The reference's mean and sample std over its seeds, where the file gives them."""
        return self.reference if isinstance(self.reference, tuple) else None

    @property
    def reference_text(self) -> str:
        if isinstance(self.reference, tuple):
            return f"{self.reference[0]:g} ± {self.reference[1]:g}"
        return self.reference


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _mapping(value: Any, keys: tuple[str, ...], where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(keys)}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    missing = [k for k in required if k not in value]
    if unknown or missing:
        problem = f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}"
        raise ConfigError(f"{where}: {problem} (keys: {', '.join(keys)})")
    return value


def _check(entry: Any, where: str) -> Check:
    entry = _mapping(entry, KEYS, where, KEYS)
    for key in ("objective", "quantity", "source", "measured_by"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ConfigError(f"{where}.{key}: expected a text, got {entry[key]!r}")
    reference: str | tuple[float, float]
    if isinstance(entry["reference"], str):
        reference = entry["reference"]
    else:
        spread = _mapping(entry["reference"], SPREAD_KEYS, f"{where}.reference", SPREAD_KEYS)
        reference = (_number(spread["mean"], f"{where}.reference.mean"),
                     _number(spread["std"], f"{where}.reference.std"))
    bounds = _mapping(entry["range"], RANGE_KEYS, f"{where}.range", ())
    if not bounds:
        raise ConfigError(f"{where}.range: give low, high or both")
    low, high = (None if bounds.get(k) is None else _number(bounds[k], f"{where}.range.{k}")
                 for k in RANGE_KEYS)
    return Check(entry["objective"], entry["quantity"], reference, low, high, entry["source"],
                 entry["measured_by"])


def load_checks(path: Path = REFERENCE_FILE) -> tuple[Check, ...]:
    """Every check of ``path`` in its order; one (objective, quantity) once."""
    checks = read_mapping(path, "checks")
    if set(checks) != {"checks"} or not isinstance(checks["checks"], list) or not checks["checks"]:
        raise ConfigError(f"{path}: expected one key 'checks' holding a list of checks")
    out = tuple(_check(entry, f"{path}: checks[{i}]") for i, entry in enumerate(checks["checks"]))
    seen: set[tuple[str, str]] = set()
    for i, check in enumerate(out):
        if (check.objective, check.quantity) in seen:
            raise ConfigError(f"{path}: checks[{i}]: {check.objective} {check.quantity!r} is checked twice")
        seen.add((check.objective, check.quantity))
    return out
