"""The reporting layer reads files: none of its modules imports the trainer or the evaluator (not even inside a
function), and importing all of them loads neither those nor torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ired" / "reporting"
REPORTING = tuple(sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__"))  # every module of the layer
FORBIDDEN = ("ired.training.trainer", "ired.evaluation.evaluate")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


@pytest.mark.parametrize("module", REPORTING)
def test_no_reporting_module_imports_train_or_evaluate(module):
    path = SRC / f"{module}.py"
    bad = [f"{path.name}:{line}: imports {name}" for line, name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def test_importing_the_reporting_layer_loads_no_torch():
    code = ("import sys\n" + "".join(f"import ired.reporting.{m}\n" for m in REPORTING)
            + "print(sorted(m for m in sys.modules if m == 'torch' or m in "
              "('ired.training.trainer', 'ired.evaluation.evaluate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
