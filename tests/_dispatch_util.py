"""Helpers shared by the dispatch tests: tiny run configs (seconds per job) and attempt-log reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ired.config import deep_merge

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
