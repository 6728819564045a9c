"""Helpers shared by the dispatch tests: tiny run configs (seconds per job), attempt-log reading, the Slurm check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ired.core.config_io import deep_merge

TINY: dict[str, Any] = {
    "data": {"n": 3, "val_size": 64, "val_harder_size": 64, "train_subset_size": 64},
    "model": {"width": 16, "time_dim": 8},
    "inference": {"steps_per_level": 1, "batch_size": 64},
    "train": {"steps": 40, "batch_size": 64, "log_every": 10, "eval_every": 20, "checkpoint_every": 10, "threads": 1},
}


def tiny_config(folder: Path, name: str, file: str | None = None, **override: Any) -> Path:
    """Write a tiny run config (n=3, width 16, 40 steps of batch 64) with ``override`` merged in."""
    path = Path(folder) / f"{file or name}.yaml"
    path.write_text(yaml.safe_dump(deep_merge({**TINY, "name": name}, override)))
    return path


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (Path(run_dir) / "attempts.jsonl").read_text().splitlines()]


def status(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "status.json").read_text())


ATTEMPT_COLUMNS = ("attempt", "job_id", "node", "state", "exit_code", "failure_kind", "action", "micro_batch",
                   "accumulation", "wall_time_s")


def _cluster_nodes() -> tuple[list[str], str]:
    """Responsive nodes of the default partition, or why there are none."""
    if not all(shutil.which(c) for c in ("sinfo", "sbatch", "sacct", "squeue")):
        return [], "Slurm client commands (sinfo, sbatch, sacct, squeue) are not on PATH"
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return [], "sinfo did not answer within 20 s"
    if out.returncode != 0:
        return [], f"no Slurm cluster answers: {out.stderr.strip()[:200]}"
    nodes = sorted({ln.split()[0] for ln in out.stdout.splitlines()
                    if ln.split()[1].rstrip("*~#") in ("idle", "mixed", "allocated", "completing")})
    if len(nodes) < 2:
        return nodes, f"needs 2 responsive Slurm nodes (start with SLURM_LOCAL_NODES=2 .ci/slurm.sh), found {nodes}"
    return nodes, ""


#: The local test cluster's own values (``.ci/slurm.sh``), given to sbatch the way a user's shell can give a site's
#: values (sbatch's input environment variables): the project's profile names no partition and no account.
LOCAL_CLUSTER_ENV = {"SBATCH_PARTITION": "debug", "SBATCH_ACCOUNT": "root"}


def slurm_nodes() -> list[str]:
    """The local cluster's nodes; skips the test with the reason, or fails it when ``IRED_REQUIRE_SLURM=1`` (CI).

    Sets the local cluster's partition and account in this process's environment (:data:`LOCAL_CLUSTER_ENV`), so
    that every sbatch of the test (and of the pipelines it starts) uses them."""
    found, why = _cluster_nodes()
    if why:
        if os.environ.get("IRED_REQUIRE_SLURM") == "1":
            pytest.fail(f"IRED_REQUIRE_SLURM=1 but {why}")
        pytest.skip(why)
    os.environ.update(LOCAL_CLUSTER_ENV)
    return found


def cancel_jobs_under(folder: Path) -> None:
    """Cancel the queued or running Slurm jobs whose working directory is under ``folder`` (a test's leftovers)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True).stdout
    mine = [line.split()[0] for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].startswith(str(folder))]
    if mine:
        subprocess.run(["scancel", *mine], check=False)


def wait_until_idle(*nodes: str, timeout_s: float = 300) -> None:
    """Until these Slurm nodes run nothing: the other tests' jobs share the cluster, and a test whose first job must
    land on the first node (an idle cluster's choice) waits for it."""
    import time

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        out = subprocess.run(["sinfo", "-h", "-N", "-n", ",".join(nodes), "-o", "%T"], capture_output=True,
                             text=True).stdout.split()
        if out and all(state.rstrip("*~#") == "idle" for state in out):
            return
        time.sleep(1)
