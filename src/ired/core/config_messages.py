"""Config validation errors as one line naming the source, the key, the value and what is allowed.

:func:`format_validation_error` turns a pydantic ``ValidationError`` of a run config (or of a partial one, or
of a registry entry) into ``source: key 'k': value v not allowed (allowed: ...)``; :func:`show_value` writes a
value as YAML would.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ValidationError


def show_value(value: Any) -> str:
    """A value as it would be written in YAML (true, null, .inf, 'text')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return repr(value)


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_BOUNDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"), (annotated_types.Le, "le", "<="),
           (annotated_types.Lt, "lt", "<"), (annotated_types.MinLen, "min_length", "length >="))


def _describe_type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        bounds = "".join(f" {sign} {getattr(meta, attr)}" for meta in args[1:] for kind, attr, sign in _BOUNDS
                         if isinstance(meta, kind))
        inner = [m for meta in args[1:] for m in getattr(meta, "metadata", [])]  # Field(ge=0) inside Annotated
        bounds += "".join(f" {sign} {getattr(m, attr)}" for m in inner for kind, attr, sign in _BOUNDS
                          if isinstance(m, kind))
        return _describe_type(args[0]) + bounds
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return " or ".join("null" if a is type(None) else _describe_type(a) for a in args)
    if origin is dict:
        return "a mapping"
    if origin is list:
        return f"a list of {_describe_type(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is tuple:
        return f"a list of {len(args)} {_describe_type(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping of keys {', '.join(annotation.model_fields)}"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _item_type(annotation: Any) -> Any:
    """The item type of ``list[X]`` (or ``list[X] | None``)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) in (list, tuple) and typing.get_args(candidate):
            return typing.get_args(candidate)[0]
    return Any


def _allowed(field: Any) -> str:
    """What a field accepts, e.g. 'an integer >= 1' or "one of 'vector', 'scalar'"."""
    args = typing.get_args(field.annotation)
    optional = typing.get_origin(field.annotation) in (types.UnionType, typing.Union) and type(None) in args
    inner = [a for a in args if a is not type(None)] if optional else [field.annotation]
    text = " or ".join(_describe_type(a) for a in inner)
    for meta in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(meta, kind):
                text += f" {sign} {getattr(meta, attr)}"
    return f"{text}, or null" if optional else text


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model of a field annotated ``Model`` or ``Model | None``, else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_at(root: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo a loc points at (list indices skipped), or None."""
    model: type[BaseModel] | None = root
    field = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _model_of(field.annotation)
    return field


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    if not loc:
        return root
    return _model_of(getattr(_field_at(root, loc), "annotation", None))


def _key(loc: tuple[Any, ...], prefix: str = "") -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def format_validation_error(source: str, exc: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """A pydantic ValidationError as one line: ``source: key 'k': value v not allowed (allowed: ...)``."""
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = _key(loc, prefix)
        kind = err["type"]
        value = err.get("input")
        if kind == "missing":
            field = _field_at(root, loc)
            parts.append(f"key {key!r} is required (allowed: {_allowed(field) if field is not None else '?'})")
        elif kind == "extra_forbidden":
            parent = _model_at(root, loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "?"
            parts.append(f"unknown key {key!r} (allowed here: {allowed})")
        elif kind == "value_error":
            parts.append(str(err.get("ctx", {}).get("error", err["msg"])))  # cross-key rules name their keys
        else:
            field = _field_at(root, loc)
            if field is not None and loc and isinstance(loc[-1], int):  # an item of a list
                allowed = _describe_type(_item_type(field.annotation))
            elif field is not None:
                allowed = _allowed(field)
            elif not loc:
                allowed = _describe_type(root)
            else:
                allowed = err["msg"]
            where = f"key {key!r}: " if key else ""
            parts.append(f"{where}value {show_value(value)} not allowed (allowed: {allowed})")
    return f"{source}: " + "; ".join(parts)
