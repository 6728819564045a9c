"""No import cycle in src/ired: the graph of every ``import`` of the package (at module level or inside a
function, parsed with ``ast`` as tests/test_layers.py parses them) has no cycle. A lazy import inside a
function hides a cycle from the interpreter but not from a reader: two modules that import each other are one
concern split in two, or a shared part that belongs in a module of its own (as the dispatcher's backend
choice, ``ired.dispatch.backends``, sits above both ``executor`` and ``broker``)."""

from __future__ import annotations

import sys
from pathlib import Path

from test_layers import MODULES, _imports


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {imported module of the package: line of the first such import}}``."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for line, target in _imports(path):
            if target in modules and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per group of modules that import each other, found by depth-first
    search."""
    found: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                cycle = path[path.index(child):] + [child]
                if not any(set(cycle) == set(c) for c in found):
                    found.append(cycle)
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
                on_path.add(child)
    return found


def describe(cycle: list[str], graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> str:
    """``a (src/.../a.py:12) -> b (src/.../b.py:30) -> a``: where each module imports the next."""
    steps = [f"{a} (src/{modules[a].as_posix().split('/src/')[-1]}:{graph[a][b]})"
             for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*steps, cycle[-1]])


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(MODULES)
    problems = [describe(c, graph, MODULES) for c in cycles(graph)]
    assert not problems, ("import cycles (move the shared part to a module both import):\n"
                          + "\n".join(problems))


def test_the_cycle_check_names_each_import_of_a_cycle(tmp_path: Path, monkeypatch) -> None:
    """The check can fail: two modules importing each other (one of them inside a function) are reported with
    the file and line of each import; a chain without a way back is not a cycle."""
    fake = tmp_path / "src" / "ired"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("from ired import b\n")
    (fake / "b.py").write_text("import os\n\n\ndef f():\n    from ired.a import g\n")
    (fake / "c.py").write_text("import ired.a\n")
    layers = sys.modules["test_layers"]
    monkeypatch.setattr(layers, "MODULES", {"ired": fake / "__init__.py", "ired.a": fake / "a.py",
                                            "ired.b": fake / "b.py", "ired.c": fake / "c.py"})
    modules = layers.MODULES
    graph = import_graph(modules)
    assert graph == {"ired": {}, "ired.a": {"ired.b": 1}, "ired.b": {"ired.a": 5}, "ired.c": {"ired.a": 1}}
    found = cycles(graph)
    assert found == [["ired.a", "ired.b", "ired.a"]]
    assert describe(found[0], graph, modules) == (
        "ired.a (src/ired/a.py:1) -> ired.b (src/ired/b.py:5) -> ired.a")
