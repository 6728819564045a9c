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

LAYERS: dict[str, tuple[str, ...]] = {
    # torch-free foundations: config, errors, the run-folder files, the progress bar
    "base": ("ired", "ired.errors", "ired.exit_codes", "ired.yamlio", "ired.atomic", "ired.jsonl", "ired.config",
             "ired.metrics", "ired.checkpoint_format", "ired.runstate", "ired.host", "ired.registry", "ired.sweeps",
             "ired.code_version", "ired.shared_fs", "ired.run_logs", "ired.progress"),
    # the maths: problems, diffusion, the energy model, the sampler, negatives, losses, schedules
    "science": ("ired.data", "ired.diffusion", "ired.models", "ired.inference", "ired.negatives", "ired.losses",
                "ired.schedules"),
    # torch infrastructure shared by training and evaluation
    "runtime": ("ired.checkpoint", "ired.device", "ired.inputs"),
    # the evaluation protocols: the one interface training and evaluation share
    "protocols": ("ired.protocols",),
    "evaluate": ("ired.evaluate", "ired.run_evaluation"),
    "train": ("ired.train", "ired.run_folder", "ired.faults", "ired.ema", "ired.train_kernel"),
    # reads files (run folders, summary.csv, cross-eval rows); never trains or evaluates
    "reporting": ("ired.diagnostics", "ired.run_record", "ired.summary", "ired.report", "ired.landscape",
                  "ired.plots", "ired.findings", "ired.stats", "ired.formatting", "ired.columns", "ired.cross_eval"),
    # the dispatcher (the pipeline's head runs it: no torch)
    "dispatch": ("ired.dispatch",),
    # commands: may use everything
    "entry": ("ired.cli", "ired.__main__", "ired.parity", "ired.bench", "ired.bench_floor", "ired.bench_gpu", "ired.bench_dag", "ired.bench_reference", "ired.bench_release_driver",
              "ired.parity_release", "ired.parity_lockstep", "ired.learning_curves"),
}

MAY_IMPORT: dict[str, set[str]] = {
    "base": {"base"},
    "science": {"base", "science"},
    "runtime": {"base", "runtime"},
    "protocols": {"base", "science", "protocols"},
    "evaluate": {"base", "science", "runtime", "protocols", "evaluate"},
    "train": {"base", "science", "runtime", "protocols", "train"},
    "reporting": {"base", "reporting"},
    "dispatch": {"base", "dispatch"},
    "entry": set(LAYERS),
}

SCIENCE_ORDER = LAYERS["science"]

EXCEPTIONS: dict[tuple[str, str], str] = {
    # the summary computes the trivial baselines of a run from its resolved config when no cross-eval row has them
    ("ired.run_record", "ired.data"): "trivial baselines from a resolved config (ired.data.trivial_baselines)",
}

TORCH_FREE_LAYERS = ("base", "dispatch")
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
            if top in TORCH and layer in TORCH_FREE_LAYERS:
                problems.append(f"{where}: {module} ({layer}, torch-free) imports {target}")
            if top != "ired" or target == module:
                continue
            target_layer = layer_of(target)
            if (module, target) in EXCEPTIONS:
                continue
            if target_layer not in MAY_IMPORT[layer]:
                problems.append(f"{where}: {module} ({layer}) imports {target} ({target_layer}); "
                                f"{layer} may import: {', '.join(sorted(MAY_IMPORT[layer]))}")
            elif layer == target_layer == "science" and SCIENCE_ORDER.index(target) > SCIENCE_ORDER.index(module):
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
    (fake / "models.py").write_text("import torch\n\n\ndef f():\n    from ired.train import Trainer\n")
    (fake / "train.py").write_text("")
    (fake / "brand_new.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {_module_name(p): p for p in sorted(fake.rglob("*.py"))})
    problems = layering_violations()
    assert any(p.startswith("src/ired/models.py:5: ired.models (science) imports ired.train (train)") for p in problems)
    assert any("module ired.brand_new is in no layer" in p for p in problems)


def test_exceptions_are_real_imports():
    """An exception that no import needs any more is stale: remove it."""
    for module, target in EXCEPTIONS:
        assert target in {t for _, t in _imports(MODULES[module])}, (module, target)


HEAD_MODULES = [m for m in MODULES if layer_of(m) in TORCH_FREE_LAYERS]


@pytest.mark.parametrize("modules", [HEAD_MODULES], ids=["dispatcher-head"])
def test_the_dispatcher_head_never_loads_torch(modules):
    """Importing the dispatcher (and every torch-free module) and comparing two configs loads no torch."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from ired.config import RunConfig, config_differences\n"
        "assert config_differences(RunConfig().to_dict(), RunConfig(seed=1).to_dict()) == ['seed']\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {TORCH!r})\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert "ired.dispatch.runner" in modules and "ired.config" in modules
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, f"the head imported {proc.stdout.strip()}\n{proc.stderr}"


def test_every_module_and_part_is_in_the_architecture_doc():
    """docs/ARCHITECTURE.md lists every module (the dispatcher as one) and states the layer map of this file."""
    doc = (SRC.parent / "docs" / "ARCHITECTURE.md").read_text()
    named = {m if layer_of(m) != "dispatch" else "ired.dispatch" for m in MODULES if m != "ired"}
    missing = sorted(m for m in named if f"`{m}`" not in doc)
    assert not missing, f"docs/ARCHITECTURE.md, module table: add {', '.join(missing)}"
    section = doc[doc.index("## Dependencies"):doc.index("## Worked example: adding a loss")]
    rows = {line.split("|")[1].strip().split(" (")[0]: line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| part") and not line.startswith("|---")}
    parts = {"base": "base", "science": "science", "runtime": "runtime", "protocols": "protocols",
             "evaluate": "evaluate", "train": "train", "reporting": "reporting", "dispatch": "dispatch",
             "entry": "commands"}
    for layer, members in LAYERS.items():
        row = rows[parts[layer]]
        for member in members:
            if member != "ired":
                short = member.removeprefix("ired.")
                assert f"`{short}`" in row or f"`{member}" in row, f"Dependencies table, {parts[layer]}: {member}"
