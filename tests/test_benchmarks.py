"""The tools of benchmarks/ (outside the library): what they import, their documented commands, and the
reference's numbers they compare with (benchmarks/reference_numbers.yaml)."""

from __future__ import annotations

import ast
import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import parity
from benchmarks.reference_numbers import REFERENCE_FILE, load_checks
from ired.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TOOLS = sorted((REPO / "benchmarks").glob("*.py"))
DRIVER = REPO / "benchmarks" / "bench_release_driver.py"
#: What the driver may import besides the standard library: the release's own modules and what they need (it
#: runs with the release's Python, where neither ired nor benchmarks is installed).
RELEASE_IMPORTS = {"dataset", "diffusion_lib", "models", "torch", "numpy"}
#: The documented commands of the tools, run as written with ``--help`` (each imports, parses, exits 0).
COMMANDS = ["parity", "parity_release", "parity_lockstep", "bench_reference", "bench_dag", "bench_gpu"]
DOCS = [REPO / "README.md", REPO / "Makefile", *sorted((REPO / "docs").rglob("*.md"))]


def _tops(path: Path) -> set[str]:
    """The top-level names of every import of ``path`` (module level or inside a function)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _library_third_party() -> set[str]:
    """What the library itself imports beyond the standard library (what an installed ired brings)."""
    tops = set().union(*(_tops(p) for p in (REPO / "src" / "ired").rglob("*.py")))
    return {t for t in tops if t not in sys.stdlib_module_names and t != "ired"}


def test_the_tools_import_only_the_library_each_other_and_what_the_library_brings():
    allowed = set(sys.stdlib_module_names) | {"ired", "benchmarks"} | _library_third_party()
    assert TOOLS and DRIVER in TOOLS
    for path in TOOLS:
        tops = _tops(path)
        if path == DRIVER:
            extra = tops - set(sys.stdlib_module_names) - RELEASE_IMPORTS
            assert not extra, f"{path.name} runs with the release's Python: it may not import {sorted(extra)}"
        else:
            extra = tops - allowed
            assert not extra, f"benchmarks/{path.name} imports {sorted(extra)}: not the library, not a tool"


#: ``python -m benchmarks.<tool> --help`` for every tool in one interpreter (torch imported once): runpy runs
#: each module as ``__main__`` with the repository root on the path, as ``python -m`` from the root does.
HELP_ALL = """
import contextlib, io, runpy, sys
for tool in sys.argv[1:]:
    sys.argv = [tool, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(f"benchmarks.{tool}", run_name="__main__", alter_sys=True)
            code = "no exit"
        except SystemExit as exc:
            code = exc.code
    usage = f"usage: python -m benchmarks.{tool}" in out.getvalue()
    print(tool, "ok" if code in (0, None) and usage else f"exit {code}, usage shown: {usage}")
"""


def test_the_documented_commands_run_from_the_repository_root():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO / "src")  # the library as installed; benchmarks/ is found from the root
    proc = subprocess.run([sys.executable, "-c", HELP_ALL, *COMMANDS], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [f"{tool} ok" for tool in COMMANDS], proc.stdout + proc.stderr[-3000:]
    typed = subprocess.run([sys.executable, "-m", "benchmarks.bench_dag", "--help"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)  # one literally (no torch: fast)
    assert typed.returncode == 0 and "usage: python -m benchmarks.bench_dag" in typed.stdout, typed.stderr


def test_the_release_driver_runs_alone_with_any_python():
    """Started by path with the release's Python: no ired, no benchmarks on its path (-I: isolated mode)."""
    proc = subprocess.run([sys.executable, "-I", str(DRIVER), "--help"], cwd=REPO.parent, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--release" in proc.stdout, proc.stderr[-2000:]


def test_the_docs_name_only_tools_that_exist():
    """Every `python -m benchmarks.X` / `ired.X` a doc or the Makefile shows names a module that is there."""
    named = {m for doc in DOCS for m in re.findall(r"-m ((?:benchmarks|ired)(?:\.\w+)+)", doc.read_text())}
    assert any(m.startswith("benchmarks.") for m in named)
    for module in sorted(named):
        parts = module.split(".")
        root = REPO / ("benchmarks" if parts[0] == "benchmarks" else "src/ired")
        target = root.joinpath(*parts[1:])
        exists = target.with_suffix(".py").is_file() or (target / "__main__.py").is_file()
        assert exists, f"a doc names `python -m {module}`: there is no such module"


def test_no_file_of_the_repository_cites_a_path_outside_it():
    outside = "../" + "shared/"  # (spelled apart: this file is in the repository too)
    proc = subprocess.run(["git", "grep", "-n", "-F", outside + "REFERENCE"], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.stdout == "", proc.stdout


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("folder", ["docs/results/parity", "docs/results/parity/replication"])
def test_the_committed_parity_table_follows_from_its_runs_and_the_reference_file(folder):
    """parity.csv is the table of parity_runs.csv and release_window.csv against reference_numbers.yaml, cell
    by cell: the file holds the numbers the committed table was made with."""
    out = REPO / folder
    measured: dict[str, list[dict[str, object]]] = {}
    for row in _read_csv(out / "parity_runs.csv"):
        objective = row["run"].removeprefix("parity_").rsplit("-s", 1)[0]
        values = {k: (None if v == "" else v if k == "run" else float(v)) for k, v in row.items()}
        measured.setdefault(objective, []).append({**values, "seed": int(row["seed"])})
    rows = parity.table(measured, parity.read_release_window(out / parity.RELEASE_FILE))
    committed = _read_csv(out / "parity.csv")
    assert [(r["objective"], r["quantity"]) for r in rows] == [
        (r["objective"], r["quantity"]) for r in committed]
    for ours, theirs in zip(rows, committed, strict=True):
        for key, value in ours.items():
            if isinstance(value, float):  # Welch's p moves in its last digits with scipy's version
                expected = float(theirs[key])
                both_nan = math.isnan(value) and math.isnan(expected)
                same = both_nan or math.isclose(value, expected, rel_tol=1e-9)
                assert same, (ours["quantity"], key, value, theirs[key])
            else:
                assert str(value) == theirs[key], (ours["quantity"], key, value, theirs[key])


def test_every_reference_number_has_its_source_and_range():
    checks = load_checks()
    assert len(checks) == 6 and all(c.source and c.measured_by and (c.low is not None or c.high is not None)
                                    for c in checks)
    denoise = next(c for c in checks if c.quantity == "train_denoise_mse[1751-2000]")
    assert denoise.spread == (0.0368, 0.0009) and (denoise.low, denoise.high) == (0.036, 0.039)


@pytest.mark.parametrize("change, message", [
    (("  - objective: denoise\n", "  - objectiv: denoise\n"), "checks[0]: unknown key 'objectiv'"),
    (("mean: 0.0174", "mean: low"), "checks[1].reference.mean: expected a number, got 'low'"),
    (("range: {high: 0.0085}", "range: {}"), "checks[2].range: give low, high or both"),
    (("quantity: val_mse_raw (reference protocol)", "quantity: val_mse_ema (reference protocol)"),
     "checks[2]: denoise 'val_mse_ema (reference protocol)' is checked twice"),
])
def test_a_wrong_reference_file_is_refused_in_one_line(tmp_path, change, message):
    text = REFERENCE_FILE.read_text()
    assert change[0] in text
    bad = tmp_path / "reference_numbers.yaml"
    bad.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        load_checks(bad)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)


def test_every_tool_is_in_the_architecture_docs_tools_table():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = doc[doc.index("## Tools outside the library"):doc.index("## Dependencies")]
    missing = [p.stem for p in TOOLS if p.stem != "__init__" and f"| `benchmarks.{p.stem}` |" not in section]
    assert not missing, f"docs/ARCHITECTURE.md, tools table: add {', '.join(missing)}"
