"""Job arrays on the real local Slurm (``.ci/slurm.sh``): the runs of one head share one sbatch, one process at a
time asks squeue for all of them, and each run keeps its own retries (exit 120 -> the node excluded) inside it.

The heads are ``ired dispatch-train`` processes (what the pipeline's train rule runs), started together as a
Snakemake head starts its jobs. ``squeue`` and ``sbatch`` are counted through logging wrappers on PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dispatch_util import attempts, slurm_nodes, status, tiny_config

pytestmark = pytest.mark.slurm

ARRAY_SETTINGS = ("cluster: slurm\n"
                  "array: {max_size: 16, window_s: 3, poll_s: 1}\n")


def counting_path(folder: Path) -> dict[str, str]:
    """An environment whose squeue/sbatch/sacct log each call (command and caller pid) to ``folder/calls``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("squeue", "sbatch", "sacct"):
        real = subprocess.run(["which", name], capture_output=True, text=True, check=True).stdout.strip()
        shim = folder / name
        shim.write_text(f'#!/bin/sh\necho "{name} $PPID" >> {folder}/calls\nexec {real} "$@"\n')
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def calls(folder: Path) -> list[tuple[str, int]]:
    path = folder / "calls"
    lines = path.read_text().split("\n") if path.exists() else []
    return [(line.split()[0], int(line.split()[1])) for line in lines if line.strip()]


def _array_of_four(folder: Path) -> tuple[dict[str, list[dict]], list[tuple[str, int]], float]:
    """Four dispatch-train heads started together in ``folder`` (their own counting PATH): each run's attempt
    rows, the squeue/sbatch/sacct calls they made, and the seconds they took."""
    settings = folder / "dispatch.yaml"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(ARRAY_SETTINGS)
    env = counting_path(folder / "bin")
    results = folder / "results" / "tiny"
    names = [f"arr{i}-s0" for i in range(4)]
    heads = []
    started = time.time()
    for name in names:  # each run exits 120 on whichever node it first starts on, and only there
        cfg = tiny_config(folder, name, faults={"exit_on_first_node": True}, train={"steps": 20})
        heads.append(subprocess.Popen([sys.executable, "-m", "ired", "dispatch-train", str(cfg), "--out",
                                       str(results / name), "--settings", str(settings)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [head.communicate(timeout=600)[0] for head in heads]
    finally:
        for head in heads:
            if head.poll() is None:
                head.kill()
    elapsed = time.time() - started
    assert all(head.returncode == 0 for head in heads), "\n".join(o[-3000:] for o in outputs)
    assert all(status(results / name)["status"] == "completed" for name in names)
    assert not list((results / ".dispatch" / "requests").glob("*"))  # nothing left behind
    return {name: attempts(results / name) for name in names}, calls(folder / "bin"), elapsed


def test_runs_share_one_array_and_retry_inside_it(tmp_path: Path) -> None:
    rows, made, elapsed = _array_of_four(tmp_path)
    failed = [name for name, r in rows.items() if r[0]["failure_kind"] == "node_failure"]
    first = [r[0]["job_id"] for r in rows.values()]
    arrays = {job.split("_")[0] for job in first}
    assert len(arrays) == 1 and all("_" in job for job in first), first  # one sbatch: tasks <array>_<i>
    assert sorted(failed) == sorted(rows), rows  # every task exits 120 on the node it first started on
    for name in failed:  # exit 120 inside the array: the run's own retry, its node excluded, in a later array
        first_row, retry = rows[name]
        bad = first_row["node"]
        assert bad in slurm_nodes() and first_row["exit_code"] == "120:0"
        assert retry["action"] == "done" and retry["exclude"] == [bad] and retry["node"] != bad
        assert retry["job_id"].split("_")[0] not in arrays
    sbatch = [c for c in made if c[0] == "sbatch"]
    squeue = [c for c in made if c[0] == "squeue"]
    # one sbatch for the first attempts, one per later group of retries (at most one per failed run)
    assert 2 <= len(sbatch) <= 1 + len(failed), made
    # one squeue per poll interval for all the runs together (not one per run per poll), plus slack for the
    # intervals in which two processes took the broker's turn back to back
    assert len(squeue) <= elapsed / 1.0 + 5, (len(squeue), elapsed)
    print(f"4 runs, {len(failed)} retried: {elapsed:.0f} s, {len(sbatch)} sbatch, {len(squeue)} squeue, "
          f"{len([c for c in made if c[0] == 'sacct'])} sacct")
