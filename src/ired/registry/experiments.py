"""The experiment registry: load, validate and resolve it (pure: reads files, writes nothing).

A registry is a folder of YAML files, one family per file (the file's stem), each a mapping of experiment id ->
definition (:class:`ExperimentEntry`). :func:`load_registry` validates every experiment of every file, selected or
not: its keys, its `set` / `at_scale` fragments (the rules of :class:`ired.core.run_config.RunConfig`), its seeds, ids
unique within and across files, and its `extends` chain (resolved once; unknown parents and cycles are errors).
An experiment that declares a `sweep` (:mod:`ired.registry.sweeps`) is a :class:`Sweep`: it expands into one experiment
per point, named ``<sweep>-<label><value>-...``, each the sweep's own experiment plus the point's values
(``Registry.sweeps`` holds the membership). :func:`resolve_runs` merges, for one scale, base + scale + the chain's
fragments (+ the point) into one validated :class:`RunConfig` per run (an experiment at a seed, named
``<experiment>-s<seed>``); a run of a sweep carries ``sweep: {name, point}``.

Every error is a one-line :class:`ConfigError` naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ired.core.config_io import build_config, deep_merge, validate_fragment
from ired.core.config_messages import format_validation_error
from ired.core.errors import ConfigError
from ired.core.run_config import RunConfig
from ired.core.yamlio import read_mapping
from ired.registry.sweeps import SweepEntry, expand_sweep

#: Experiment ids must be usable as Snakemake rule names and wildcard values.
ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Names the pipeline uses for its own targets; an experiment cannot take them (`snakemake <id>` builds it).
RESERVED_IDS = frozenset({
    "all_ablations", "summary", "summary_table", "plots", "cross_eval", "report", "train", "export_checkpoint",
    "import_checkpoint", "cross_eval_checkpoint", "plot_curves", "plot_ablation", "plot_cross_eval", "external",
    "inference_sweep", "inference_sweep_table", "plot_inference_sweep", "findings", "all", "resolve", "evaluate",
    "evaluate_external", "plot_sweeps",
})
RESERVED_PREFIX = "plot_"  # one rule per entry of ired.reporting.plots.PLOTS: plot_<name>


class ExperimentEntry(BaseModel):
    """One experiment as written in a registry file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = Field(min_length=1, description="One line saying what the experiment tests (summary table).")
    extends: str | None = Field(
        None, description="Id of the experiment this one starts from (set, at_scale, seeds inherited)."
    )
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, description="Training seeds, distinct, one run each (null: the parent's, else [0])."
    )
    set: dict[str, Any] = Field(
        default_factory=dict, description="Differences from the parent (or the base), a partial run config."
    )
    at_scale: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Further differences at one scale only: scale name -> partial run config."
    )
    sweep: SweepEntry | None = Field(
        None, description="Makes this experiment a sweep: one experiment per point of `grid` (every combination) and "
        "`zip` (values that go together), named <id>-<label><value>-... (ired.registry.sweeps)."
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds {seeds} repeat a seed (allowed: distinct integers >= 0)")
        return seeds


@dataclass(frozen=True)
class Experiment:
    """A validated experiment with its `extends` chain resolved."""

    id: str
    file: str
    family: str
    description: str
    extends: str | None
    seeds: tuple[int, ...]  # its own, else its parent's, else (0,)
    set: dict[str, Any]
    at_scale: dict[str, dict[str, Any]]
    chain: tuple[str, ...]  # the ids of the extends chain, oldest first, ending with this one
    sweep: str | None = None  # the sweep this experiment is a point of
    point: dict[str, Any] = field(default_factory=dict)  # its values: dotted key -> value (a sweep's point)


@dataclass(frozen=True)
class Sweep:
    """A registry experiment that declares `sweep`: it has no runs of its own, its points do."""

    id: str
    file: str
    family: str
    description: str
    keys: tuple[str, ...]  # the swept dotted keys: grid keys, then zip keys
    points: tuple[str, ...]  # the ids of its point experiments, in order


@dataclass(frozen=True)
class Registry:
    folder: str
    experiments: dict[str, Experiment]  # files in name order, experiments in file order (a sweep: its points)
    sweeps: dict[str, Sweep] = field(default_factory=dict)

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(e.family for e in self.experiments.values()))

    def select(self, selection: str | Iterable[str], key: str = "experiments") -> list[str]:
        """Experiment ids, each once: `all` (every experiment outside sweeps), or, in the order given, experiment
        ids, sweep ids (their points) and family names (every experiment of the file, its sweeps' points too)."""
        if selection == "all":
            return [e.id for e in self.experiments.values() if e.sweep is None]
        if isinstance(selection, str):
            selection = [selection]
        chosen: dict[str, None] = {}
        for name in selection:
            if name in self.experiments:
                ids = [name]
            elif name in self.sweeps:
                ids = list(self.sweeps[name].points)
            else:
                ids = [e.id for e in self.experiments.values() if e.family == name]
            if not ids:
                sweeps = f"; sweeps: {', '.join(self.sweeps)}" if self.sweeps else ""
                named = ", ".join(e.id for e in self.experiments.values() if e.sweep is None)
                raise ConfigError(
                    f"config key {key}: {name!r} is neither an experiment, a sweep nor a family "
                    f"(families: {', '.join(self.families)}; experiments: {named}{sweeps})"
                )
            chosen.update(dict.fromkeys(ids))
        return list(chosen)


@dataclass(frozen=True)
class ResolvedRun:
    run: str  # <experiment>-s<seed>
    experiment: str
    seed: int
    family: str
    description: str
    config: RunConfig
    milestones: tuple[int, ...] = field(default=())  # train.milestones: sorted, distinct, each in 1..train.steps
    sweep: str | None = None  # the sweep of this run's experiment (None: not a sweep's)
    point: dict[str, Any] = field(default_factory=dict)  # the sweep point: dotted key -> value


def _entries(path: Path) -> dict[str, ExperimentEntry]:
    data = read_mapping(path, "experiment ids to definitions")
    entries = {}
    for exp_id, raw in data.items():
        if not isinstance(exp_id, str) or not ID_PATTERN.match(exp_id):
            raise ConfigError(
                f"{path}: experiment id {exp_id!r} not allowed (allowed: a letter, then letters, digits and _)"
            )
        if exp_id in RESERVED_IDS or exp_id.startswith(RESERVED_PREFIX):
            raise ConfigError(
                f"{path}: experiment id {exp_id!r} not allowed (the pipeline's target names: "
                f"{', '.join(sorted(RESERVED_IDS))}, and any {RESERVED_PREFIX}<name>)"
            )
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{path}: key {exp_id!r}: value {raw!r} not allowed (allowed: a mapping with description, "
                f"and optionally extends, seeds, set, at_scale)"
            )
        try:
            entry = ExperimentEntry.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(str(path), exc, ExperimentEntry, prefix=exp_id)) from None
        if "sweep" in entry.set:
            raise ConfigError(f"{path}: unknown key '{exp_id}.set.sweep' (a run's sweep is set by the registry; "
                              f"declare a sweep as the experiment's own key: {exp_id}.sweep)")
        validate_fragment(entry.set, str(path), f"{exp_id}.set")
        for scale, fragment in entry.at_scale.items():
            validate_fragment(fragment, str(path), f"{exp_id}.at_scale.{scale}")
        entries[exp_id] = entry
    return entries


def _chain(exp_id: str, entries: dict[str, tuple[Path, ExperimentEntry]]) -> tuple[str, ...]:
    """The extends chain of ``exp_id``, oldest first; unknown parents, sweeps as parents and cycles are one-line
    errors."""
    chain = [exp_id]
    while (parent := entries[chain[-1]][1].extends) is not None:
        path = entries[chain[-1]][0]
        if parent in entries and entries[parent][1].sweep is not None:
            raise ConfigError(
                f"{path}: key '{chain[-1]}.extends': {parent!r} is a sweep, which cannot be extended (allowed: an "
                f"experiment without sweep, e.g. the sweep's parent {entries[parent][1].extends or '(none)'}; or "
                f"add the values to the sweep)"
            )
        if parent not in entries:
            shown = " -> ".join([*chain, parent])
            raise ConfigError(
                f"{path}: key '{chain[-1]}.extends': unknown experiment {parent!r} (chain {shown}; "
                f"experiments: {', '.join(entries)})"
            )
        if parent in chain:
            shown = " -> ".join([*chain, parent])
            raise ConfigError(f"{entries[exp_id][0]}: key '{exp_id}.extends': cycle {shown}")
        chain.append(parent)
    return tuple(reversed(chain))


def load_registry(folder: str | Path, scales_dir: str | Path | None = None) -> Registry:
    """Load and validate every experiment of every ``*.yaml`` file of ``folder``.

    With ``scales_dir``, `at_scale` names are checked against the scale files there (:func:`resolve_runs` always
    checks them).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"config key registry: {folder} is not a folder of experiment files")
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise ConfigError(f"config key registry: no experiment files (*.yaml) in {folder}")
    entries: dict[str, tuple[Path, ExperimentEntry]] = {}
    families = {p.stem for p in paths}
    for path in paths:
        for exp_id, entry in _entries(path).items():
            if exp_id in entries:
                raise ConfigError(f"{path}: experiment {exp_id} is already defined in {entries[exp_id][0]}")
            if exp_id in families:
                raise ConfigError(
                    f"{path}: experiment id {exp_id!r} not allowed: it is the name of a family (a registry file)"
                )
            entries[exp_id] = (path, entry)
    experiments: dict[str, Experiment] = {}
    sweeps: dict[str, Sweep] = {}
    for exp_id, (path, entry) in entries.items():
        chain = _chain(exp_id, entries)
        own = [listed for e in chain if (listed := entries[e][1].seeds) is not None]
        seeds = tuple(own[-1]) if own else (0,)
        if entry.sweep is None:
            experiments[exp_id] = Experiment(
                id=exp_id, file=str(path), family=path.stem, description=entry.description, extends=entry.extends,
                seeds=seeds, set=entry.set, at_scale=entry.at_scale, chain=chain,
            )
            continue
        points = expand_sweep(exp_id, entry.sweep, str(path))
        for point in points:  # the sweep's own experiment (set, at_scale, seeds) at one point
            if point.name in entries or point.name in experiments:
                raise ConfigError(f"{path}: experiment {exp_id}: point name {point.name!r} is already an experiment")
            shown = ", ".join(f"{k}={v}" for k, v in point.values.items())
            experiments[point.name] = Experiment(
                id=point.name, file=str(path), family=path.stem, description=f"{entry.description} ({shown})",
                extends=entry.extends, seeds=seeds, set=entry.set, at_scale=entry.at_scale,
                chain=(*chain[:-1], point.name), sweep=exp_id, point=point.values,
            )
        sweeps[exp_id] = Sweep(
            id=exp_id, file=str(path), family=path.stem, description=entry.description,
            keys=(*entry.sweep.grid, *entry.sweep.zip), points=tuple(p.name for p in points),
        )
    registry = Registry(str(folder), experiments, sweeps)
    if scales_dir is not None:
        _check_scale_names(registry, _scale_names(scales_dir))
    return registry


def _scale_names(scales_dir: str | Path) -> list[str]:
    scales_dir = Path(scales_dir)
    if not scales_dir.is_dir():
        raise ConfigError(f"config key scales: {scales_dir} is not a folder of scale files")
    return sorted(p.stem for p in scales_dir.glob("*.yaml"))


def _check_scale_names(registry: Registry, scales: list[str]) -> None:
    for exp in [*registry.experiments.values()]:
        if exp.sweep is not None and exp.id != registry.sweeps[exp.sweep].points[0]:
            continue  # the points of a sweep share its at_scale: checked once
        for name in exp.at_scale:
            if name not in scales:
                owner = exp.sweep or exp.id
                raise ConfigError(
                    f"{exp.file}: key '{owner}.at_scale.{name}': unknown scale {name!r} (scales: {', '.join(scales)})"
                )


def _with_values(merged: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """``merged`` with a sweep point's values (dotted key -> value): the mappings on each key's path are copied,
    the rest is shared (never mutated), so a point costs its keys, not a copy of the whole config."""
    out = dict(merged)
    for key, value in point.items():
        *parents, leaf = key.split(".")
        cursor = out
        for part in parents:
            cursor[part] = dict(cursor.get(part) or {})
            cursor = cursor[part]
        cursor[leaf] = value
    return out


def resolve_runs(
    registry: Registry,
    base: str | Path | dict[str, Any],
    scales_dir: str | Path,
    scale: str,
    selection: str | Iterable[str] = "all",
    max_seeds: int | None = None,
) -> dict[str, ResolvedRun]:
    """One validated run config per run of the selected experiments at ``scale``.

    A run's config is, merged in this order: the base file, the scale file ``<scales_dir>/<scale>.yaml``, then for
    every experiment of its `extends` chain, oldest first, its `set` and its `at_scale.<scale>`; then, for a sweep's
    point, the point's values; then the run's name and seed (and its `sweep`: name and point). Every experiment
    (selected or not) is resolved, so a cross-key error anywhere fails here.
    """
    scales = _scale_names(scales_dir)
    if scale not in scales:
        raise ConfigError(
            f"config key scale: {scale!r} has no file {Path(scales_dir) / f'{scale}.yaml'} "
            f"(scales: {', '.join(scales)})"
        )
    _check_scale_names(registry, scales)
    if max_seeds is not None and (isinstance(max_seeds, bool) or not isinstance(max_seeds, int) or max_seeds < 1):
        raise ConfigError(f"config key max_seeds: value {max_seeds!r} not allowed (allowed: an integer >= 1, or null)")
    if isinstance(base, dict):
        base_fragment = validate_fragment(base, "base config")
    else:
        base_fragment = validate_fragment(read_mapping(base, "run config keys"), str(base))
    scale_file = Path(scales_dir) / f"{scale}.yaml"
    scale_fragment = validate_fragment(read_mapping(scale_file, "run config keys"), str(scale_file))
    selected = registry.select(selection)
    chosen = set(selected)
    start = deep_merge(base_fragment, scale_fragment)
    shared: dict[str, dict[str, Any]] = {}  # a sweep's chain merged once for all its points
    runs: dict[str, list[ResolvedRun]] = {}
    for exp in registry.experiments.values():
        merged = shared.get(exp.sweep) if exp.sweep is not None else None
        if merged is None:
            merged = start
            for ancestor in exp.chain:
                layer = registry.experiments[ancestor]
                merged = deep_merge(merged, layer.set)
                merged = deep_merge(merged, layer.at_scale.get(scale) or {})
            if exp.sweep is not None:
                shared[exp.sweep] = merged
        if exp.point:
            merged = _with_values(merged, exp.point)
        seeds = exp.seeds[:max_seeds] if exp.id in chosen else exp.seeds[:1]
        for seed in seeds:
            name = f"{exp.id}-s{seed}"
            own: dict[str, Any] = {"name": name, "seed": seed}  # top-level values: replaced, not merged
            if exp.sweep is not None:
                own["sweep"] = {"name": exp.sweep, "point": exp.point}
            cfg = build_config({**merged, **own}, f"{exp.file}: experiment {exp.id} at scale {scale}")
            if exp.id in chosen:
                runs.setdefault(exp.id, []).append(ResolvedRun(
                    name, exp.id, seed, exp.family, exp.description, cfg, tuple(sorted(set(cfg.train.milestones))),
                    exp.sweep, exp.point,
                ))
    return {r.run: r for exp_id in selected for r in runs[exp_id]}
