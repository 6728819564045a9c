"""`ired`, Snakemake and docs/PIPELINE.md agree: every command of its tables runs (dry run, `-n`) or is marked.

Each `snakemake ...` of a table cell runs with `--dry-run` added in a copy of the workflow (a clean one: no
results), and must exit 0; each `ired ...` must be accepted by ired's argument parser, and the commands that
watch runs (`ired status`, `ired logs`, `ired plot`, `ired cancel`) run as written on a results folder with two
runs, one of them training (exit 0). A command that cannot run here is listed in MARKED (by prefix) or INTERACTIVE
(as written) with the reason. Commands that only name targets (`snakemake q208`, `snakemake summary`,
...) are checked together in one dry run naming all those targets (Snakemake refuses the run if any target is
unknown); the others run one each. The dry runs go in parallel, one workflow copy per worker.
"""

from __future__ import annotations

import itertools
import os
import queue
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from workflow_helpers import REPO, copy_workflow

DOC = REPO / "docs" / "PIPELINE.md"
#: Commands (prefix) that are not run, with why.
MARKED = {
    "tail -f": "follows the log of a training in progress; nothing to follow in a test",
    "rm ": "deletes results; the snakemake command after it is run",
}
#: Commands (as written) that wait for a person; the same command with a bounded count is documented and run.
INTERACTIVE = {
    "ired status --watch": "refreshes until Ctrl-C (the bounded `--watch --count N` beside it is run)",
}
#: `ired` commands run as written on a results folder of two runs (the others are parsed only).
RUN_AS_WRITTEN = ("status", "logs", "plot", "cancel")
WORKERS = 3


def braces(word: str) -> list[str]:
    """The shell's brace expansion of one word (`s{0,1}` -> `s0`, `s1`), as a user's shell does it."""
    parts = re.split(r"(\{[^{}]*,[^{}]*\})", word)
    options = [p[1:-1].split(",") if p.startswith("{") and "," in p else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*options)]


def documented_commands() -> list[str]:
    """Every command in the last cell of a table row of docs/PIPELINE.md, in order, each once."""
    commands: list[str] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cell = line.strip().strip("|").split("|")[-1]
        for span in re.findall(r"`([^`]+)`", cell):
            for part in (p.strip() for p in span.split(";")):
                if part.split()[0] in ("snakemake", "ired", "rm", "tail") and part not in commands:
                    commands.append(part)
    return commands


COMMANDS = documented_commands()
SNAKEMAKE = [c for c in COMMANDS if c.startswith("snakemake")]


#: What a reader types for the docs' `<scale>` placeholder in a fresh folder: the default scale.
SCALE = "laptop"


def arguments(command: str) -> list[str]:
    """The Snakemake arguments of a documented command, `<scale>` filled in, braces expanded, without -n."""
    words = shlex.split(command.replace("<scale>", SCALE))[1:]
    return [w for word in words for w in braces(word) if w not in ("-n", "--dry-run")]


def targets_only(command: str) -> bool:
    """Names targets and nothing else (`snakemake` alone builds the default target: a run of its own)."""
    args = arguments(command)
    return bool(args) and not any(a.startswith("-") for a in args)


#: One dry run per distinct argument list; every targets-only command maps to the one run naming all targets.
ALL_TARGETS = tuple(dict.fromkeys(a for c in SNAKEMAKE if targets_only(c) for a in arguments(c)))
RUN_OF = {c: ALL_TARGETS if targets_only(c) else tuple(arguments(c)) for c in SNAKEMAKE}


def test_the_tables_have_commands():
    assert len(SNAKEMAKE) >= 15 and any(c.startswith("ired ") for c in COMMANDS), COMMANDS


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    copies: queue.Queue[Path] = queue.Queue()
    for i in range(WORKERS):
        copies.put(copy_workflow(tmp_path_factory.mktemp(f"wf{i}")))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(args: tuple[str, ...]) -> subprocess.CompletedProcess:
        args = [*args] if "--summary" in args else [*args, "--dry-run"]
        workdir = copies.get()
        try:
            return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                                  capture_output=True, text=True, timeout=600)
        finally:
            copies.put(workdir)

    runs = list(dict.fromkeys(RUN_OF.values()))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(zip(runs, pool.map(run, runs), strict=True))


@pytest.fixture(scope="module")
def watched_results(tmp_path_factory) -> Path:
    """A folder where the docs' `ired status / logs / plot / cancel` commands find what they name: results/<scale>/
    with q208-s0 (completed) and q208-s1 (stopped at step 20 of 40), their train.log and metrics."""
    import json

    root = tmp_path_factory.mktemp("watched")
    for run, status, rows in (("q208-s0", "completed", 4), ("q208-s1", "running", 2)):
        folder = root / "results" / SCALE / run
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("train:\n  steps: 40\n")
        (folder / "status.json").write_text(json.dumps({"status": status, "step": 10 * rows, "steps": 40}))
        (folder / "metrics.jsonl").write_text("".join(
            json.dumps({"step": 10 * (i + 1), "train_denoise_mse": 1.0 / (i + 1), "val_task_mse": 0.5 / (i + 1)})
            + "\n" for i in range(rows)))
        (folder / "train.log").write_text(f"step {10 * rows}/40\n")
    return root


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command(command, request):
    marked = next((reason for prefix, reason in MARKED.items() if command.startswith(prefix)), None)
    marked = marked or INTERACTIVE.get(command)
    if marked:
        pytest.skip(f"marked: {marked}")
    if command.startswith("ired "):
        from ired.cli import build_parser

        words = shlex.split(command.replace("<scale>", SCALE))
        build_parser().parse_args(words[1:])  # argparse exits 2 on anything it does not know
        if words[1] in RUN_AS_WRITTEN:
            where = request.getfixturevalue("watched_results")
            proc = subprocess.run([sys.executable, "-m", "ired", *words[1:]], cwd=where, capture_output=True,
                                  text=True, timeout=120)
            assert proc.returncode == 0, f"{command}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return
    proc = request.getfixturevalue("dry_runs")[RUN_OF[command]]
    assert proc.returncode == 0, (f"{command} (run as: snakemake {' '.join(RUN_OF[command])} -n):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
