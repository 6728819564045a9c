"""Which part of ired may import which (docs/ARCHITECTURE.md, "Dependencies"), and the dispatcher head never
loads torch.

Every module of src/ired belongs to one layer of :data:`LAYERS`; every ``import`` it makes (at module level or
inside a function, parsed with ``ast``) must reach a module of a layer in :data:`MAY_IMPORT` of its own layer.
Inside the science the order of :data:`SCIENCE_ORDER` is enforced too: a module imports only modules before it
(the sampler, ``inference``, needs nothing from training). A new module must be declared here: the test names it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
TOOLS = SRC.parent / "benchmarks"  # the repository's tools: they import the library, never the other way

LAYERS: dict[str, tuple[str, ...]] = {
    # torch-free foundations: the run config, YAML, errors, exit codes, the metrics contract, the progress bar
    "core": ("ired", "ired.core"),
    # the run folder as storage: atomic files, JSONL records, checkpoints, the run lock and state (below training
    # and evaluation: evaluate loads checkpoints, train evaluates)
    "runs": ("ired.runs",),
    # experiments and parameter sweeps as data
    "registry": ("ired.registry",),
    # the maths: problems, diffusion, the energy model, the sampler, negatives, losses, schedules, EMA, the device
    "science": ("ired.science",),
    # the evaluation protocols (the one interface training and evaluation share), checkpoint and run evaluation
    "evaluation": ("ired.evaluation",),
    "training": ("ired.training",),
    # reads files (run folders, summary.csv, cross-eval rows); never trains or evaluates
    "reporting": ("ired.reporting",),
    # the dispatcher (the pipeline's head runs it: no torch)
    "dispatch": ("ired.dispatch",),
    # commands: may use everything
    "commands": ("ired.cli", "ired.__main__", "ired.bench"),
}

MAY_IMPORT: dict[str, set[str]] = {
    "core": {"core"},
    "runs": {"core", "runs"},
    "registry": {"core", "registry"},
    "science": {"core", "science"},
    "evaluation": {"core", "runs", "science", "evaluation"},
    "training": {"core", "runs", "science", "evaluation", "training"},
    "reporting": {"core", "runs", "registry", "reporting"},
    "dispatch": {"core", "runs", "registry", "dispatch"},
    "commands": set(LAYERS),
}

# inside the science a module imports only modules before it (the sampler needs nothing from training)
SCIENCE_ORDER = ("ired.science.device", "ired.science.data", "ired.science.diffusion", "ired.science.models",
                 "ired.science.compiled", "ired.science.inference", "ired.science.negatives", "ired.science.losses",
                 "ired.science.schedules", "ired.science.energy_diffusion", "ired.science.ema")

EXCEPTIONS: dict[tuple[str, str], str] = {
    # the summary computes the trivial baselines of a run from its resolved config when no cross-eval row has them
    ("ired.reporting.run_record", "ired.science.data"): "trivial baselines from a resolved config "
                                                        "(ired.science.data.trivial_baselines)",
    ("ired.reporting.learning_curves", "ired.science.data"): "the trivial baselines a scale's curves are drawn against",
}

TORCH_FREE_LAYERS = ("core", "runs", "registry", "dispatch")
TORCH_MODULES = ("ired.runs.checkpoint",)  # the one torch module of a torch-free layer (the head never imports it)
TORCH = ("torch", "numpy", "pandas", "matplotlib")  # heavy imports the head must not pay for


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "ired").rglob("*.py"))}


def layer_of(module: str) -> str | None:
    for layer, members in LAYERS.items():
        for member in members:
            if module == member or (member != "ired" and module.startswith(member + ".")):
                return layer
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of the file, wherever it is; ``from ired import x`` -> ``ired.x``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((node.lineno, sub if sub in MODULES else node.module))
    return out


def layering_violations() -> list[str]:
    problems = []
    for module, path in MODULES.items():
        layer = layer_of(module)
        if layer is None:
            problems.append(f"src/{path.relative_to(SRC)}: module {module} is in no layer of tests/test_layers.py "
                            "LAYERS (declare it there and in docs/ARCHITECTURE.md)")
            continue
        for line, target in _imports(path):
            where = f"src/{path.relative_to(SRC)}:{line}"
            top = target.split(".")[0]
            if top == TOOLS.name:
                problems.append(f"{where}: {module} imports {target}: the library never imports the tools of "
                                f"{TOOLS.name}/ (they import it)")
            if top in TORCH and layer in TORCH_FREE_LAYERS and module not in TORCH_MODULES:
                problems.append(f"{where}: {module} ({layer}, torch-free) imports {target}")
            if top != "ired" or target == module:
                continue
            target_layer = layer_of(target)
            if (module, target) in EXCEPTIONS:
                continue
            if target_layer not in MAY_IMPORT[layer]:
                problems.append(f"{where}: {module} ({layer}) imports {target} ({target_layer}); "
                                f"{layer} may import: {', '.join(sorted(MAY_IMPORT[layer]))}")
            elif (layer == target_layer == "science" and module in SCIENCE_ORDER
                  and SCIENCE_ORDER.index(target) > SCIENCE_ORDER.index(module)):
                problems.append(f"{where}: {module} imports {target}, which comes after it in the science "
                                f"({' < '.join(SCIENCE_ORDER)})")
    return problems


def test_every_import_follows_the_layer_map():
    problems = layering_violations()
    assert not problems, "import layering (docs/ARCHITECTURE.md, Dependencies):\n" + "\n".join(problems)


def test_the_layer_check_names_an_offending_import(tmp_path, monkeypatch):
    """The check can fail: a science module importing the trainer is reported with its file, line and layers."""
    fake = tmp_path / "ired"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    for package in ("science", "training"):
        (fake / package).mkdir()
        (fake / package / "__init__.py").write_text("")
    (fake / "science" / "models.py").write_text("import torch\n\n\ndef f():\n"
                                                "    from ired.training.trainer import Trainer\n")
    (fake / "science" / "data.py").write_text("from benchmarks.parity import table\n")
    (fake / "training" / "trainer.py").write_text("")
    (fake / "brand_new.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {_module_name(p): p for p in sorted(fake.rglob("*.py"))})
    problems = layering_violations()
    assert any(p.startswith("src/ired/science/models.py:5: ired.science.models (science) "
                            "imports ired.training.trainer (training)") for p in problems)
    assert any("module ired.brand_new is in no layer" in p for p in problems)
    assert any(p.startswith("src/ired/science/data.py:1: ired.science.data imports benchmarks.parity: the library "
                            "never imports") for p in problems)


def test_exceptions_are_real_imports():
    """An exception that no import needs any more is stale: remove it."""
    for module, target in EXCEPTIONS:
        assert target in {t for _, t in _imports(MODULES[module])}, (module, target)


HEAD_MODULES = [m for m in MODULES if layer_of(m) in TORCH_FREE_LAYERS and m not in TORCH_MODULES]


@pytest.mark.parametrize("modules", [HEAD_MODULES], ids=["dispatcher-head"])
def test_the_dispatcher_head_never_loads_torch(modules):
    """Importing the dispatcher (and every torch-free module) and comparing two configs loads no torch."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from ired.core.run_config import RunConfig\n"
        "from ired.core.same_run import config_differences\n"
        "assert config_differences(RunConfig().to_dict(), RunConfig(seed=1).to_dict()) == ['seed']\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {TORCH!r})\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert "ired.dispatch.runner" in modules and "ired.core.run_config" in modules
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, f"the head imported {proc.stdout.strip()}\n{proc.stderr}"


def test_every_module_and_part_is_in_the_architecture_doc():
    """docs/ARCHITECTURE.md lists every module (the dispatcher as one) and states the layer map of this file."""
    doc = (SRC.parent / "docs" / "ARCHITECTURE.md").read_text()
    named = {m if layer_of(m) != "dispatch" else "ired.dispatch" for m, path in MODULES.items()
             if path.name != "__init__.py" or layer_of(m) == "dispatch"}
    missing = sorted(m for m in named if f"`{m}`" not in doc)
    assert not missing, f"docs/ARCHITECTURE.md, module table: add {', '.join(missing)}"
    section = doc[doc.index("## Dependencies"):doc.index("## Worked example: adding a loss")]
    rows = {line.split("|")[1].strip().split(" (")[0]: line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| part") and not line.startswith("|---")}
    for layer, members in LAYERS.items():
        row = rows[layer]
        for member in members:
            if member != "ired":
                assert f"`{member}" in row, f"Dependencies table, {layer}: {member}"


MAX_MODULE_LINES = 450  # issue 24: a module that grows past this holds more than one concern; split it


def test_no_module_is_over_the_size_limit():
    """Every module of the library and of benchmarks/ stays small enough to read as one concern."""
    files = sorted((SRC / "ired").rglob("*.py")) + sorted((SRC.parent / "benchmarks").glob("*.py"))
    long = [f"{p.relative_to(SRC.parent)}: {n} lines" for p in files
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): " + ", ".join(long)
