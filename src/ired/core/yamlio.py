"""Reading the project's YAML files: YAML 1.2 scalars, duplicate keys refused, every error one line.

PyYAML implements YAML 1.1, where ``1e-4`` is a string, ``yes``/``no``/``on``/``off`` are booleans, ``010`` is
octal and ``2024-01-01`` a date. :class:`Loader` resolves plain scalars by the YAML 1.2 core schema instead, so
``1e-4`` is a number wherever a config is read (files, ``--set`` values, the registry). It is built on
``yaml.CSafeLoader`` when libyaml is present (registries are read in bulk), else on ``yaml.SafeLoader``.

Errors are :class:`ConfigError` in one line naming the file, and the line and column PyYAML reports:
``config/scales/tiny.yaml: line 3, column 1: duplicate key 'train' (first at line 1)``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ired.core.errors import ConfigError

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")


class Loader(_Base):
    """SafeLoader with the YAML 1.2 core schema's plain scalars and duplicate mapping keys refused."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeConstructor reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = str(self.construct_scalar(node))
        if value.startswith("0o"):
            return int(value[2:], 8)
        if value.startswith("0x"):
            return int(value[2:], 16)
        return int(value)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = str(self.construct_scalar(node)).lower()
        if value.endswith(".inf"):
            return float("-inf") if value.startswith("-") else float("inf")
        if value == ".nan":
            return float("nan")
        return float(value)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        return str(self.construct_scalar(node)).lower() == "true"


Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_yaml_map)
Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
Loader.add_constructor("tag:yaml.org,2002:float", Loader.construct_yaml_float)
Loader.add_constructor("tag:yaml.org,2002:bool", Loader.construct_yaml_bool)
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
Loader.add_implicit_resolver("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""])
Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings the YAML 1.2 rules would read as numbers (``'1e5'``), so what it writes
    reads back the same with :class:`Loader` and with YAML 1.1 readers."""


class _CDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """:class:`Dumper` with libyaml's emitter, ~5x faster (a pipeline dumps every run's config). It writes the same
    text as PyYAML's emitter when every string is printable ASCII; others can fold or escape differently."""


for _tag, _rx, _first in (("tag:yaml.org,2002:int", _INT, "-+0123456789"),
                          ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789.")):
    Dumper.add_implicit_resolver(_tag, _rx, list(_first))
    _CDumper.add_implicit_resolver(_tag, _rx, list(_first))


def _plain_ascii(data: Any) -> bool:
    """Every string (keys too) of ``data`` is printable ASCII: no escapes, so both emitters write the same text.
    (Its JSON text is printable ASCII without a backslash: JSON escapes every control character with one.)"""
    try:
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError):
        return False
    return text.isascii() and text.isprintable() and "\\" not in text


def dump_yaml(data: Any) -> str:
    """YAML text of ``data`` (keys in their order) by :class:`Dumper`'s rules: always PyYAML's text, written by
    libyaml's emitter when that gives the same text (printable-ASCII strings), else by PyYAML's own."""
    return yaml.dump(data, Dumper=_CDumper if _plain_ascii(data) else Dumper, sort_keys=False)


def _describe(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line that keeps its line and column (1-based)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        context = f" ({exc.context})" if exc.context and not str(exc.problem or "").startswith("duplicate key") else ""
        what = "" if str(exc.problem or "").startswith("duplicate key") else "not valid YAML: "
        return f"{where}{what}{exc.problem}{context}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"position {exc.position}: not valid YAML: unacceptable character #x{exc.character:04x}"
    return f"not valid YAML: {' '.join(str(exc).split())}"


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text with :class:`Loader`; errors are one-line ConfigErrors naming ``source``."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (Loader is a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None


def read_text(path: str | Path) -> str:
    """A file's text, as UTF-8; a missing, unreadable or non-UTF-8 file is a one-line ConfigError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None


def read_mapping(path: str | Path, what: str = "config keys") -> dict[str, Any]:
    """A YAML file holding a non-empty mapping. An empty file (or one of comments only) is an error: write
    ``{}`` to mean "no keys"."""
    path = Path(path)
    data = parse_yaml(read_text(path), str(path))
    if data is None:
        raise ConfigError(f"{path} is empty (expected a mapping of {what}; write {{}} for none)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {what}, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "an integer", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
