"""Where a run stands on its OOM ladder, kept in its record folder (``dispatch/ladder.json``), so that the next
invocation (a resumed run, a rerun after a give-up, a forced retrain of the same config) starts from the memory and
micro-batch that worked instead of meeting the same out-of-memory kills again.

Written whenever an OOM moves the plan; read when a new round of attempts starts. Memory only ever grows from the
settings' ``mem_gb`` (a larger setting wins); the micro-batch, negative steps and replay buffer only ever shrink,
and only for the same effective batch. A run whose config changed forgets it (:func:`forget`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ired.dispatch.policy import Plan
from ired.runs.atomic import write_text_atomic
from ired.runs.paths import dispatch_folder

LADDER_FILE = "ladder.json"  # in the record folder's dispatch/


def _path(run_dir: Path) -> Path:
    return dispatch_folder(run_dir) / LADDER_FILE


def read(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_path(run_dir).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def remember(run_dir: Path, plan: Plan, why: str) -> None:
    """Record the plan's ladder knobs (after an OOM moved them), with the action that did it."""
    data = {"mem_gb": plan.mem_gb, "micro_batch": plan.micro_batch, "batch_size": plan.batch_size,
            "negatives_steps": plan.negatives_steps, "buffer_size": plan.buffer_size, "why": why,
            "updated": time.time()}
    write_text_atomic(_path(run_dir), json.dumps(data, indent=1) + "\n")


def _smaller(current: int | None, kept: Any) -> int | None:
    if current is None or not isinstance(kept, int) or kept <= 0:
        return current
    return min(current, kept)


def resume(plan: Plan, run_dir: Path) -> tuple[Plan, str | None]:
    """The initial plan moved to the kept ladder position, and a line saying so (None when nothing was kept)."""
    kept = read(run_dir)
    if not kept:
        return plan, None
    moved = plan
    mem = kept.get("mem_gb")
    if isinstance(mem, (int, float)) and mem > plan.mem_gb:
        moved = replace(moved, mem_gb=float(mem))
    if kept.get("batch_size") == plan.batch_size and plan.batch_size is not None:
        micro = _smaller(plan.micro_batch, kept.get("micro_batch"))
        if micro is not None and plan.batch_size % micro == 0:
            moved = replace(moved, micro_batch=micro)
    moved = replace(moved, negatives_steps=_smaller(plan.negatives_steps, kept.get("negatives_steps")),
                    buffer_size=_smaller(plan.buffer_size, kept.get("buffer_size")))
    if moved == plan:
        return plan, None
    changes = [f"{name} {getattr(plan, name)}->{getattr(moved, name)}"
               for name in ("mem_gb", "micro_batch", "negatives_steps", "buffer_size")
               if getattr(plan, name) != getattr(moved, name)]
    return moved, f"continuing the OOM ladder from {_path(run_dir)} ({kept.get('why')}): {', '.join(changes)}"


def forget(run_dir: Path) -> None:
    _path(run_dir).unlink(missing_ok=True)
