"""Helpers of the workflow tests: a private copy of the workflow, the Snakemake CLI, and its job plans."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks import bench_dag

REPO = Path(__file__).resolve().parents[1]


def copy_workflow(dest: Path) -> Path:
    """The workflow files (not results/, logs/, .snakemake/) copied into ``dest``, which becomes the run folder."""
    dest.mkdir(parents=True, exist_ok=True)
    bench_dag.copy_workflow(REPO, dest)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the Snakemake CLI of this interpreter in ``workdir`` (so profiles/default applies as for a user)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> number of jobs a dry run plans ({} when there is nothing to do)."""
    proc = snakemake(workdir, "--dry-run", *args)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"\s*(\w+)\s+(\d+)\s*", line)
        if not match:
            break
        jobs[match.group(1)] = int(match.group(2))
    jobs.pop("total", None)
    return jobs


def mtimes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}
