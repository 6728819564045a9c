"""Failure classification on literal scheduler and job output (as seen on the local Slurm, shared/slurm/README.md)."""

from __future__ import annotations

import pytest

from ired.dispatch.failures import Evidence, FailureKind, classify
from ired.dispatch.sacct import parse_sacct

K = FailureKind

# JobID|JobName|State|ExitCode|NodeList|Elapsed|SubmitLine, as `sacct -P -n -o ...` prints them
EXIT_120 = """\
12|ired-run-ab12cd-a1|FAILED|120:0|node1|00:00:03|sbatch --job-name=ired-run-ab12cd-a1 /r/dispatch/.submission_file_1.sh
12.batch|batch|FAILED|120:0|node1|00:00:03|
12.0|python3|FAILED|120:0|node1|00:00:02|srun --unbuffered python3 -u -m submitit.core._submit /r/dispatch
"""
OOM_HOST = """\
7|hog|FAILED|1:0|node2|00:00:04|sbatch /x/submission.sh
7.batch|batch|FAILED|1:0|node2|00:00:04|
7.0|python3|OUT_OF_MEMORY|0:125|node2|00:00:03|srun python3 -u -m submitit.core._submit /x
"""
OOM_HOST_STDERR = (
    "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=7.0. Some of your processes may have been killed "
    "by the cgroup out-of-memory handler.\nsrun: error: node2: task 0: Out Of Memory\n"
)
SIGKILL = "9|x|FAILED|9:0|node1|00:00:05|sbatch s.sh\n9.batch|batch|FAILED|9:0|node1|00:00:05|\n"
NODE_FAIL = "21|x|NODE_FAIL|0:0|node2|00:01:00|sbatch s.sh\n21.batch|batch|CANCELLED|0:15|node2|00:01:00|\n"
TIMEOUT = """\
30|x|TIMEOUT|0:0|node1|00:01:31|sbatch s.sh
30.batch|batch|CANCELLED|0:15|node1|00:01:32|
30.0|python3|CANCELLED|0:15|node1|00:01:32|srun x
"""
TIMEOUT_STDERR = "slurmstepd: error: *** STEP 30.0 ON node1 CANCELLED AT 2024-06-01T10:00:00 DUE TO TIME LIMIT ***\n"
PREEMPTED = "31|x|PREEMPTED|0:0|node1|00:00:40|sbatch s.sh\n31.batch|batch|CANCELLED|0:15|node1|00:00:40|\n"
CANCELLED = "40|x|CANCELLED by 0|0:0|node1|00:00:10|sbatch s.sh\n40.batch|batch|CANCELLED|0:15|node1|00:00:11|\n"
FAILED_EXIT = "50|x|FAILED|{code}:0|node1|00:00:06|sbatch s.sh\n50.0|python3|FAILED|{code}:0|node1|00:00:05|srun x\n"
DEVICE_OOM_TRACE = """\
FailedJobError: job 60 raised:
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ired/training/trainer.py", line 250, in _micro_step
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)
"""


def ev(sacct: str = "", **kw) -> Evidence:
    return Evidence(sacct=tuple(parse_sacct(sacct)), **kw)


@pytest.mark.parametrize(
    "evidence, kind",
    [
        (ev(EXIT_120), K.node_failure),
        (ev(OOM_HOST, stderr_tail=OOM_HOST_STDERR), K.oom_host),
        (ev(OOM_HOST), K.oom_host),  # the step's OUT_OF_MEMORY alone suffices: the job itself says FAILED 1:0
        (ev("7|hog|FAILED|1:0|node2|00:00:04|\n", stderr_tail=OOM_HOST_STDERR), K.oom_host),  # sacct lagging
        (ev(NODE_FAIL), K.node_failure),
        (ev(TIMEOUT, stderr_tail=TIMEOUT_STDERR), K.timeout),  # steps CANCELLED: still a timeout
        (ev(stderr_tail=TIMEOUT_STDERR), K.timeout),
        (ev(PREEMPTED), K.preempted),
        (ev(CANCELLED), K.cancelled),
        (ev(stderr_tail="slurmstepd: error: *** JOB 40 ON node1 CANCELLED AT 2024-06-01T10:00:00 ***"), K.cancelled),
        (ev(SIGKILL), K.unknown),  # a SIGKILL (137) shows as 9:0 and says nothing about why
        (ev(FAILED_EXIT.format(code=3), returncode=3, stderr_tail="ired train: run diverged at step 40: loss nan"),
         K.diverged),
        (ev(returncode=1, run_status="diverged", run_detail="diverged at step 12"), K.diverged),
        (ev(FAILED_EXIT.format(code=2), returncode=2, stderr_tail="ired train: error: x.yaml: unknown key 'lrr'"),
         K.config_error),
        (ev(submitit_error="FailedJobError: Traceback...\nired.errors.ConfigError: bad protocol 'nope'"),
         K.config_error),
        (ev(FAILED_EXIT.format(code=1), returncode=1, submitit_error=None, stderr_tail=DEVICE_OOM_TRACE), K.oom_device),
        (ev(submitit_error=DEVICE_OOM_TRACE), K.oom_device),
        (ev(submitit_error="FailedJobError: RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED"), K.oom_device),
        (ev(stderr_tail="srun: error: Task launch for StepId=5.0 failed on node node2: Job launch failure"),
         K.node_failure),
        (ev(returncode=-9), K.unknown),
        (ev(FAILED_EXIT.format(code=75), returncode=75, job_signal="SIGUSR2"), K.timeout),  # a slice's end, warned
        (ev(FAILED_EXIT.format(code=75), returncode=75, run_detail="stopped by SIGTERM at step 40"), K.preempted),
        (ev(FAILED_EXIT.format(code=1), returncode=1, stderr_tail="ValueError: boom"), K.unknown),
        (ev(), K.unknown),
    ],
)
def test_classify_table(evidence: Evidence, kind: FailureKind) -> None:
    assert classify(evidence).kind is kind


def test_reason_names_the_evidence() -> None:
    c = classify(ev(EXIT_120))
    assert c.reason == "exit code 120"
    c = classify(ev(OOM_HOST))
    assert "7.0|OUT_OF_MEMORY|0:125" in c.reason
    c = classify(ev(FAILED_EXIT.format(code=2), returncode=2,
                    stderr_tail="loading\nired train: error: x.yaml: unknown key 'lrr'"))
    assert c.reason == "exit code 2: ired train: error: x.yaml: unknown key 'lrr'"
    c = classify(ev(returncode=3, run_status="diverged", run_detail="diverged at step 40: loss_total is nan"))
    assert c.reason == "status.json says diverged: diverged at step 40: loss_total is nan"
    # srun's own echo of the exit code comes last in the job's stderr: the cause is the trainer's line before it
    c = classify(ev(FAILED_EXIT.format(code=2), returncode=2, stderr_tail=(
        "ired train: error: a.yaml: run q started under code 1 and would resume under 2: ...\n"
        "srun: error: node1: task 0: Exited with exit code 2")))
    assert c.reason.startswith("exit code 2: ired train: error: a.yaml: run q started under code 1"), c.reason


def test_node_failure_exit_codes_are_configurable() -> None:
    assert classify(ev(FAILED_EXIT.format(code=42))).kind is K.unknown
    assert classify(ev(FAILED_EXIT.format(code=42), node_failure_exit_codes=frozenset({42}))).kind is K.node_failure
    assert classify(ev(EXIT_120, node_failure_exit_codes=frozenset())).kind is K.unknown


def test_host_oom_text_is_not_mistaken_for_device_oom() -> None:
    # slurm's "Out Of Memory" (capitalised) is the host cgroup; the device allocator says "out of memory"
    assert classify(ev(stderr_tail="srun: error: node1: task 0: Out Of Memory")).kind is K.oom_host
    assert classify(ev(stderr_tail="RuntimeError: CUDA out of memory")).kind is K.oom_device


def test_verdicts_of_the_job_win_over_scheduler_symptoms() -> None:
    # a diverged run whose job also exited 120-like code: divergence is deterministic, never retried
    both = ev(FAILED_EXIT.format(code=3), returncode=3, run_status="diverged", stderr_tail=OOM_HOST_STDERR)
    assert classify(both).kind is K.diverged
    # a cancelled job is not retried even when its log shows an OOM before the cancel
    assert classify(ev(CANCELLED, stderr_tail=DEVICE_OOM_TRACE)).kind is K.cancelled


def test_failed_runs_are_listed_with_their_class_and_rerun_command(tmp_path) -> None:
    import json

    from ired.dispatch.outcomes import failed_runs, failure_report

    ok, bad, stopped = (tmp_path / n for n in ("ok-s0", "bad-s0", "stopped-s0"))
    for folder in (ok, bad, stopped):
        folder.mkdir()
    (ok / "final.pt").write_bytes(b"x")
    (bad / "dispatch").mkdir()
    (bad / "dispatch" / "7_0_log.err").write_text("ired train: error: ...\n")
    (bad / "attempts.jsonl").write_text(json.dumps({"attempt": 1, "action": "no retry: config errors need a fix",
                                                    "failure_kind": "config_error", "reason": "exit code 2",
                                                    "log": str(bad / "dispatch" / "7_0_log.err")}) + "\n")
    (stopped / "train.log").write_text("step 20/40\n")
    (stopped / "attempts.jsonl").write_text(json.dumps({"attempt": 1, "action": "the head was stopped",
                                                        "failure_kind": "interrupted", "reason": "SIGINT"}) + "\n")
    failed = failed_runs({"ok-s0": ok, "bad-s0": bad, "stopped-s0": stopped})
    assert [(f.run, f.failure) for f in failed] == [("bad-s0", "config_error"), ("stopped-s0", "interrupted")]
    text = failure_report(failed, "snakemake {target} --config scale=tiny")
    assert "bad-s0: train failed: config_error (exit code 2)" in text
    assert (f"bad-s0: train failed: config_error (exit code 2)\n    log: {bad / 'dispatch' / '7_0_log.err'}\n"
            f"    rerun: snakemake {bad / 'final.pt'} --config scale=tiny") in text
    assert f"stopped-s0: train stopped: interrupted (SIGINT)\n    log: {stopped / 'train.log'}\n" in text
