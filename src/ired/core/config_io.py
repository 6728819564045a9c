"""A run config in and out: read YAML, merge mappings, ``--set key=value`` overrides, validate a whole config
(:func:`build_config`) or a fragment of one (:func:`validate_fragment`), load, dump, and the JSON schema.

Errors are one line naming the file, the key, the value and what is allowed
(:mod:`ired.core.config_messages`), raised as :class:`ired.core.errors.ConfigError` before any work starts.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, create_model

from ired.core.config_messages import format_validation_error, show_value
from ired.core.errors import ConfigError
from ired.core.run_config import RunConfig, StrictModel
from ired.core.yamlio import dump_yaml, parse_yaml, read_mapping


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return base updated recursively by override (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(assignment: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML 1.2 (as in files)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value (e.g. train.steps=100)")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment!r}: empty key")
    value = parse_yaml(raw, f"--set {assignment!r}") if raw.strip() else None
    nested: dict[str, Any] = {}
    cursor = nested
    parts = key.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (YAML 1.2 scalars, duplicate keys refused); every error is one line naming the file.
    An empty file is an error: write ``{}`` for a file without keys."""
    return read_mapping(path)


def build_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a (merged) mapping into a RunConfig; errors name ``source``, key, value and what is allowed."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: value {show_value(data)} not allowed (allowed: a mapping of run config keys)")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, RunConfig)) from None


# --------------------------------------------------------------------------------------------------
# Partial run configs (base, scales, an experiment's `set` / `at_scale`): the same fields and rules,
# every key optional, cross-key rules left to the merged config
# --------------------------------------------------------------------------------------------------


@cache
def _partial(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional and no model validators; nested models partial too. A run's `sweep`
    is left out: the registry sets it, a fragment (base, scale, an experiment's `set`) cannot."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if model is RunConfig and name == "sweep":
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            sub = _partial(ann)
            fields[name] = (sub, Field(None, description=field.description))
        else:
            typ = Annotated[ann, *field.metadata] if field.metadata else ann
            fields[name] = (typ, Field(None, description=field.description))
    return create_model(f"Partial{model.__name__}", __base__=StrictModel, **fields)


def validate_fragment(fragment: Any, source: str, prefix: str = "") -> dict[str, Any]:
    """Check a partial run config (keys, types, per-key values) by the rules of :class:`RunConfig`; return it.

    ``prefix`` is the fragment's place in its file (e.g. ``q206.set``), so errors name the key as written there.
    Cross-key rules (e.g. eval_every a multiple of log_every) apply to the merged config (:func:`build_config`).
    """
    where = f"key {prefix!r}: " if prefix else ""
    if not isinstance(fragment, dict):
        raise ConfigError(
            f"{source}: {where}value {show_value(fragment)} not allowed (allowed: a mapping of run config keys)"
        )
    try:
        _partial(RunConfig).model_validate(fragment)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, _partial(RunConfig), prefix)) from None
    return fragment


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a run config from YAML (or the defaults when ``path`` is None) and apply ``key=value`` overrides."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    for assignment in overrides:
        data = deep_merge(data, parse_set(assignment))
    if overrides:
        source += " with --set " + " ".join(overrides)
    return build_config(data, source)


def dump_config(cfg: RunConfig) -> str:
    return dump_yaml(cfg.to_dict())


#: A run name `<experiment>-s<seed>` that YAML writes as it is (no quotes): no indicator, space or colon, and never
#: read as a number, boolean, null or date (it ends with -s<digits>).
_PLAIN_RUN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*-s[0-9]+$")


def dump_config_from(cfg: RunConfig, like: RunConfig, like_text: str) -> str:
    """``dump_config(cfg)``, derived from ``like_text`` (``dump_config(like)``) when the two configs differ only by
    their name and seed (another seed of the same experiment): the name and seed lines replaced, the same text
    as a dump, several times faster. Dumped afresh whenever that is not certain."""
    mine, theirs = cfg.to_dict(), like.to_dict()
    if {**mine, "name": theirs["name"], "seed": theirs["seed"]} != theirs:
        return dump_config(cfg)
    old_name, old_seed = f"name: {theirs['name']}\n", f"\nseed: {theirs['seed']}\n"
    new_name, new_seed = f"name: {mine['name']}\n", f"\nseed: {mine['seed']}\n"
    plain = all(_PLAIN_RUN_NAME.match(n) or dump_yaml({"name": n}) == f"name: {n}\n"
                for n in (mine["name"], theirs["name"]))
    if not plain or not like_text.startswith(old_name) or like_text.count(old_seed) != 1:
        return dump_config(cfg)
    return new_name + like_text[len(old_name):].replace(old_seed, new_seed)


def json_schema() -> dict[str, Any]:
    """The JSON schema of a run config (every key with a description and a default)."""
    return RunConfig.model_json_schema()
