"""Sweeps as data: a few run-config keys and their values, expanded into named points (pure: no I/O).

An experiment of the registry may declare a ``sweep`` (:class:`SweepEntry`)::

    lr_temp:
      extends: q208
      description: Learning rate x softplus temperature of q208.
      sweep:
        grid: {train.lr: [3.0e-4, 1.0e-3], objective.temperature: [0.5, 1.0]}   # every combination
        zip: {objective.margin: [0.1, 0.2], negatives.steps: [2, 4]}              # the i-th values go together

Each point of the sweep (the cartesian product of the ``grid`` lists, times the positions of the ``zip`` lists)
is an experiment of its own, named ``<sweep>-<label><value>-...`` (:func:`point_name`), e.g.
``lr_temp-lr3e-4-temp0.5``: deterministic from the values, made of letters, digits and ``_ . + -`` only, so it is a
path, a Snakemake wildcard value and a Slurm job name as it is. A key's label is its last part (``train.lr`` ->
``lr``; ``temperature`` -> ``temp``, see :data:`ABBREVIATIONS`; the last two parts when two swept keys end alike)
unless the sweep's ``labels`` names it.

Every error is a one-line :class:`ConfigError` naming the file, the experiment, the key and what is allowed.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ired.core.config_io import validate_fragment
from ired.core.errors import ConfigError
from ired.core.run_config import RunConfig

#: Short labels of common last key parts in point names (any other key is labelled by its last part).
ABBREVIATIONS: dict[str, str] = {
    "temperature": "temp",
    "temperature_final": "temp_final",
    "batch_size": "bs",
    "micro_batch": "mb",
    "energy_reg": "ereg",
    "buffer_size": "buf",
    "steps_per_level": "spl",
}
#: Keys a sweep cannot vary: the registry sets them per run (seeds are the experiment's `seeds`).
UNSWEPT: frozenset[str] = frozenset({"name", "seed", "description", "sweep"})
#: The longest run name a sweep may produce (`<point>-s<seed>`); beyond it, give shorter `labels`.
MAX_RUN_NAME = 100
LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: What a point name is made of: safe in paths, Snakemake wildcards and Slurm job names.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.+]+$")


class SweepEntry(BaseModel):
    """The ``sweep`` of a registry experiment (keys are dotted run-config keys, e.g. ``train.lr``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    grid: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted run-config key -> list of values; every combination of the lists is a point "
        "(cartesian product).",
    )
    zip: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted run-config key -> list of values, all lists of one length; the i-th values go together.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Dotted key -> its short name in the point names (default: the key's last part, e.g. lr, temp).",
    )


@dataclass(frozen=True)
class SweepPoint:
    name: str  # <sweep>-<label><value>-...
    values: dict[str, Any]  # dotted key -> value: the grid keys in order, then the zip keys


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 1e-3}`` -> ``{"train": {"lr": 1e-3}}`` (a partial run config)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        cursor = out
        for part in parents:
            cursor = cursor.setdefault(part, {})
        cursor[leaf] = value
    return out


def format_value(value: Any) -> str:
    """A value as it appears in a point name: ``3e-4``, ``0.5``, ``1``, ``true``, ``softplus``, ``10_20`` (a list)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) < 1e-2 or abs(value) >= 1e5:
            mantissa, exponent = f"{value:.12e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exponent)}"
        return f"{value:.12g}"
    if isinstance(value, (list, tuple)):
        return "_".join(format_value(v) for v in value) or "none"
    return str(value)


def point_name(sweep: str, labels: dict[str, str], values: dict[str, Any]) -> str:
    """``<sweep>-<label><value>-...`` in the order of ``values``; a text value appears alone (``-softplus``)."""
    parts = [sweep]
    for key, value in values.items():
        shown = format_value(value)
        parts.append(shown if isinstance(value, str) else f"{labels[key]}{shown}")
    return "-".join(parts)


def default_labels(keys: list[str]) -> dict[str, str]:
    """Each key's last part (abbreviated, :data:`ABBREVIATIONS`); the last two parts, joined by ``_``, for keys
    whose last parts are alike."""
    last = {k: ABBREVIATIONS.get(k.split(".")[-1], k.split(".")[-1]) for k in keys}
    counts: dict[str, int] = {}
    for label in last.values():
        counts[label] = counts.get(label, 0) + 1
    return {k: (label if counts[label] == 1 else "_".join(k.split(".")[-2:])) for k, label in last.items()}


def _check_key(key: Any, where: str) -> None:
    """A dotted key naming one run-config value (not a section), or a one-line error listing what is allowed."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: key {key!r} not allowed (allowed: a dotted run-config key, e.g. train.lr)")
    model: type[BaseModel] | None = RunConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields if model is not None else {}
        allowed = [f for f in fields if not (i == 0 and f in UNSWEPT)]
        if model is None or part not in allowed:
            shown = ".".join(parts[:i])
            place = f" under {shown}" if shown else ""
            extra = (
                " (name, seed and description are set per run; seeds: the experiment's `seeds`)"
                if part in UNSWEPT and i == 0
                else ""
            )
            raise ConfigError(
                f"{where}: unknown key {key!r}{extra} (allowed{place}: {', '.join(allowed) or 'none: not a section'})"
            )
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is not None:
        raise ConfigError(
            f"{where}: key {key!r} is a section, not a value (allowed: one of its keys, e.g. "
            f"{key}.{next(iter(model.model_fields))})"
        )


def _check_values(key: str, values: Any, where: str, source: str, prefix: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: key {key!r}: value {values!r} not allowed (allowed: a non-empty list of values, "
                          f"e.g. {key}: [1.0e-4, 3.0e-4])")
    for value in values:
        if isinstance(value, dict):
            raise ConfigError(f"{where}: key {key!r}: value {value!r} not allowed (allowed: a value of {key}; "
                              "sweep a section's keys one by one, as dotted keys)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: key {key!r}: value {value!r} not allowed (allowed: finite numbers)")
        if isinstance(value, str) and not _SAFE_TEXT.match(value):
            raise ConfigError(f"{where}: key {key!r}: value {value!r} cannot name a sweep point "
                              "(allowed: letters, digits and _ . +)")
        validate_fragment(nested({key: value}), source, prefix)
    shown = [format_value(v) for v in values]
    repeated = sorted({s for s in shown if shown.count(s) > 1})
    if repeated:
        raise ConfigError(f"{where}: key {key!r}: values {values!r} repeat {', '.join(repeated)} "
                          "(allowed: distinct values)")
    return values


def expand_sweep(sweep: str, entry: SweepEntry, source: str) -> list[SweepPoint]:
    """The points of one sweep, in order: the grid's cartesian product (first key slowest), then the zip's
    positions. Validates keys, values (by the rules of :class:`RunConfig`), zip lengths, labels and names."""
    where = f"{source}: experiment {sweep}"
    grid, zipped = entry.grid, entry.zip
    if not grid and not zipped:
        raise ConfigError(f"{where}: key '{sweep}.sweep' has no keys (allowed: grid and/or zip, each a mapping of "
                          "dotted run-config keys to lists of values)")
    both = sorted(set(grid) & set(zipped))
    if both:
        raise ConfigError(f"{where}: key {both[0]!r} is in both sweep.grid and sweep.zip (allowed: in one of them)")
    for part, values in (("grid", grid), ("zip", zipped)):
        for key, listed in values.items():
            _check_key(key, f"{where}, sweep.{part}")
            _check_values(key, listed, f"{where}, sweep.{part}", source, f"{sweep}.sweep.{part}")
    lengths = {key: len(v) for key, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ConfigError(f"{where}: sweep.zip lists have unequal lengths ({shown}) "
                          "(allowed: lists of one length; use sweep.grid for every combination)")
    keys = [*grid, *zipped]
    for key, label in entry.labels.items():
        if key not in keys:
            raise ConfigError(f"{where}: key 'sweep.labels.{key}' names no swept key (allowed: {', '.join(keys)})")
        if not LABEL.match(label):
            raise ConfigError(f"{where}: key 'sweep.labels.{key}': value {label!r} not allowed "
                              "(allowed: a letter, then letters, digits and _)")
    labels = {**default_labels(keys), **entry.labels}
    same = sorted({label for label in labels.values() if list(labels.values()).count(label) > 1})
    if same:
        named = ", ".join(k for k in keys if labels[k] in same)
        raise ConfigError(f"{where}: keys {named} have the same label {same[0]!r} in point names "
                          f"(allowed: distinct labels; set sweep.labels)")
    combos = list(itertools.product(*grid.values())) if grid else [()]
    positions = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    points: dict[str, SweepPoint] = {}
    for combo in combos:
        for position in positions:
            values = {**dict(zip(grid, combo, strict=True)), **dict(zip(zipped, position, strict=True))}
            name = point_name(sweep, labels, values)
            if not NAME.match(name):
                raise ConfigError(f"{where}: point {values} would be named {name!r} (allowed in names: letters, "
                                  "digits and _ . + -; use other values)")
            if name in points:
                raise ConfigError(f"{where}: points {points[name].values} and {values} have the same name {name!r} "
                                  "(allowed: values that print differently, or distinct sweep.labels)")
            if len(name) + len("-s0000") > MAX_RUN_NAME:
                raise ConfigError(f"{where}: point name {name!r} is longer than {MAX_RUN_NAME - 6} characters "
                                  "(allowed: shorter sweep.labels, e.g. labels: {objective.temperature: T})")
            points[name] = SweepPoint(name, values)
    return list(points.values())
