"""The OOM ladder's position is kept in the run folder: the next invocation starts from the memory and micro-batch
that worked (unit level, then through the dispatcher with local jobs: seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
from _dispatch_util import attempts, status, tiny_config

from ired.core.config_io import read_yaml
from ired.dispatch import DispatchSettings, dispatch, ladder, run_training
from ired.dispatch.policy import Plan

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # jobs can run this file's functions
LOCAL = DispatchSettings(cluster="local", runtime=5, poll_s=0.3, poll_max_s=1.0)
TRAIN = Plan(mem_gb=4.0, micro_batch=64, batch_size=64, negatives_steps=4)


def test_resume_moves_only_towards_what_worked(tmp_path: Path) -> None:
    assert ladder.resume(TRAIN, tmp_path) == (TRAIN, None)
    ladder.remember(tmp_path, Plan(mem_gb=16.0, micro_batch=16, batch_size=64, negatives_steps=2), "oom ladder x")
    plan, line = ladder.resume(TRAIN, tmp_path)
    assert (plan.mem_gb, plan.micro_batch, plan.accumulation, plan.negatives_steps) == (16.0, 16, 4, 2)
    assert "mem_gb 4.0->16.0" in line and "micro_batch 64->16" in line and str(tmp_path) in line
    bigger = Plan(mem_gb=32.0, micro_batch=64, batch_size=128)  # a larger setting wins; another batch: no micro
    plan, _ = ladder.resume(bigger, tmp_path)
    assert (plan.mem_gb, plan.micro_batch) == (32.0, 64)
    ladder.forget(tmp_path)
    assert ladder.resume(TRAIN, tmp_path) == (TRAIN, None)


def _host_oom_once(marker: str) -> str:
    """Fails like a job over its memory limit (the cgroup's message) the first time, succeeds afterwards."""
    flag = Path(marker)
    if not flag.exists():
        flag.write_text("1")
        print("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1.batch", file=sys.stderr, flush=True)
        raise SystemExit(1)
    return "ok"


def test_a_host_oom_raises_memory_and_the_next_invocation_starts_there(tmp_path: Path) -> None:
    settings = LOCAL.model_copy(update={"mem_mb": 1024})
    assert dispatch(_host_oom_once, str(tmp_path / "flag"), settings=settings, run_dir=tmp_path / "job") == "ok"
    assert [(r["failure_kind"], r["mem_gb"]) for r in attempts(tmp_path / "job")] == [("oom_host", 1.0), (None, 2.0)]
    assert dispatch(_host_oom_once, str(tmp_path / "flag"), settings=settings, run_dir=tmp_path / "job") == "ok"
    assert [(r["attempt"], r["mem_gb"]) for r in attempts(tmp_path / "job")][2:] == [(3, 2.0)]


def test_a_training_starts_at_the_kept_micro_batch(tmp_path: Path) -> None:
    """What a device OOM left (micro-batch 32 of 64, kept by the runner as in the test above): the next round's
    first attempt trains at it, without meeting the OOM (fault: any micro-batch above 32 runs out of memory)."""
    cfg = tiny_config(tmp_path, "oom", faults={"oom_above_micro_batch": 32}, train={"steps": 20})
    ladder.remember(tmp_path / "run", Plan(mem_gb=LOCAL.mem_gb, micro_batch=32, batch_size=64),
                    "oom ladder micro_batch")
    run_training(cfg, tmp_path / "run", LOCAL)
    assert [(r["failure_kind"], r["micro_batch"], r["accumulation"]) for r in attempts(tmp_path / "run")] == [
        (None, 32, 2)]
    assert read_yaml(tmp_path / "run" / "resolved_config.yaml")["train"]["micro_batch"] == 32
    assert status(tmp_path / "run")["status"] == "completed"
