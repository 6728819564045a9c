"""The dispatch loop's phases (adopt, submit, wait, settle) against a scripted backend: which job is adopted
or submitted, which rows each settled job leaves in attempts.jsonl, and what job.json holds in between. No
processes, no scheduler: the backend answers from a script (the local and Slurm tests run real jobs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ired.core.errors import DispatchError
from ired.dispatch import dispatch, loop
from ired.dispatch.attempts import JobRecord, read_attempts, read_job_record, request_cancel, write_job_record
from ired.dispatch.executor import Finished, Submission
from ired.dispatch.failures import Evidence
from ired.dispatch.sacct import parse_sacct
from ired.dispatch.settings import DispatchSettings

SETTINGS = DispatchSettings(cluster="local")


def ended(ok: bool, rc: int | None = None, node: str = "n1", state: str | None = None,
          requeued: tuple[Finished, ...] = ()) -> Finished:
    """How a scripted job ended: its exit code (and, for a run Slurm requeued, its sacct state)."""
    sacct = tuple(parse_sacct(f"J|ired|{state}|0:0|{node}|00:00:05|sbatch\n")) if state else ()
    evidence = Evidence(sacct=sacct, returncode=rc, submitit_error=None if ok else "UncompletedJobError: x")
    return Finished(ok, "result" if ok else None, evidence, state or ("COMPLETED" if ok else "FAILED"),
                    None if rc is None else str(rc), node, 5.0, Path("/logs/err"), list(requeued))


class ScriptedBackend:
    """A backend whose jobs end as the script says, one entry per job, and which records what it was asked."""

    where = "scripted job"

    def __init__(self, *script: Finished, found: str | None = None, on_wait: Any = None) -> None:
        self.script, self.found, self.on_wait = list(script), found, on_wait
        self.calls: list[tuple[Any, ...]] = []
        self.submitted = 0

    def request(self, run_dir: Path, record: JobRecord, plan: Any, folder: Path, job_name: str, comment: str,
                fn: Any, args: Any, stop: Any = None) -> Submission:
        self.calls.append(("submit", record.attempt, plan.exclude))
        self.submitted += 1
        return Submission(f"J{self.submitted}", folder, job_name, comment)

    def find_job(self, job_name: str, comment: str, index: int | None = None) -> str | None:
        self.calls.append(("find", comment))
        return self.found

    def is_active(self, job_id: str) -> bool:
        return True

    def wait(self, job_id: str, folder: Path | None = None, stop: Any = None) -> None:
        self.calls.append(("wait", job_id))
        if self.on_wait is not None:
            self.on_wait()

    def cancel(self, job_ids: list[str]) -> bool:
        self.calls.append(("cancel", *job_ids))
        return True

    def gather(self, folder: Path, job_id: str, codes: list[int], run_status: Any = None,
               submitted_at: float | None = None) -> Finished:
        return self.script.pop(0)


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch):
    def install(be: ScriptedBackend) -> ScriptedBackend:
        monkeypatch.setattr(loop, "backend", lambda settings, run_dir=None: be)
        return be
    return install


def run(run_dir: Path, settings: DispatchSettings = SETTINGS) -> Any:
    return dispatch(len, "abc", settings=settings, run_dir=run_dir, name="job")


def rows(run_dir: Path) -> list[tuple[Any, ...]]:
    return [(r["attempt"], r["job_id"], r["failure_kind"], r["action"], r["exclude"], r["final"])
            for r in read_attempts(run_dir)]


def test_a_job_slurm_requeued_is_one_row_per_run_then_the_policy_decides(tmp_path: Path, use) -> None:
    """Submit, wait, settle: the requeued runs of J1 are attempts 1-2 (a plain REQUEUED is logged preempted, a
    node failure excludes its node), its last run fails on n3 (attempt 3, excluded too), J2 succeeds."""
    requeued = (ended(False, state="REQUEUED", node="n1"), ended(False, state="NODE_FAIL", node="n2"))
    be = use(ScriptedBackend(ended(False, rc=120, node="n3", requeued=requeued), ended(True)))
    assert run(tmp_path) == "result"
    again = "requeued by Slurm itself (same job id)"
    assert rows(tmp_path) == [
        (1, "J1", "preempted", again, [], False),
        (2, "J1", "node_failure", again, [], False),
        (3, "J1", "node_failure", "resubmit excluding n3 (exclude=n2,n3)", ["n2"], False),
        (4, "J2", None, "done", ["n2", "n3"], True),
    ]
    assert be.calls == [("submit", 1, ()), ("wait", "J1"), ("find", read_job_record(tmp_path).comment),
                        ("submit", 4, ("n2", "n3")), ("wait", "J2")]


def test_adopt_a_recorded_job_or_one_found_by_its_name_never_a_duplicate(tmp_path: Path, use) -> None:
    plan = {"mem_gb": 6.0, "exclude": ["n9"]}
    write_job_record(tmp_path / "a", JobRecord(3, "OLD", "ired-x", "local", str(tmp_path), plan, 1.0, "t:a3"))
    be = use(ScriptedBackend(ended(True)))
    assert run(tmp_path / "a") == "result" and be.calls == [("wait", "OLD")]
    assert rows(tmp_path / "a") == [(3, "OLD", None, "done", ["n9"], True)]

    write_job_record(tmp_path / "b", JobRecord(1, None, "ired-x", "local", str(tmp_path), plan, 1.0, "t:a1"))
    be = use(ScriptedBackend(ended(True), found="FOUND"))
    assert run(tmp_path / "b") == "result" and be.calls == [("find", "t:a1"), ("wait", "FOUND")]
    assert read_job_record(tmp_path / "b").job_id == "FOUND"

    write_job_record(tmp_path / "c", JobRecord(1, None, "ired-x", "local", str(tmp_path), plan, 1.0, "t:a1"))
    be = use(ScriptedBackend(ended(True), found=None))  # sbatch never ran: submitted now, same attempt, plan
    assert run(tmp_path / "c") == "result" and be.calls == [("find", "t:a1"), ("submit", 1, ("n9",)),
                                                             ("wait", "J1")]


def test_ired_cancel_while_waiting_cancels_the_job_and_logs_it_interrupted(tmp_path: Path, use) -> None:
    def cancel() -> None:
        request_cancel(tmp_path, read_job_record(tmp_path), by="ired cancel (test)")

    be = use(ScriptedBackend(ended(False, state="CANCELLED"), on_wait=cancel))
    with pytest.raises(DispatchError, match=r"stopped by ired cancel \(test\): job J1 \(attempt 1\)") as err:
        run(tmp_path)
    assert err.value.stopped and ("cancel", "J1") in be.calls
    assert rows(tmp_path) == [(1, "J1", "interrupted", "stopped on purpose: job cancelled; the next command "
                                                      "resumes the run", [], False)]
    assert not (tmp_path / "cancel.json").exists()


def test_an_interrupted_attempt_spends_no_failure_budget(tmp_path: Path, use) -> None:
    """The round's interrupted row is not a failure: with max_attempts=2 the one failure after it is retried.
    """
    row = {"attempt": 1, "job_id": "J0", "failure_kind": "interrupted", "action": "stopped", "exclude": [],
           "final": False}
    (tmp_path / "attempts.jsonl").write_text(json.dumps(row) + "\n")
    use(ScriptedBackend(ended(False, rc=1), ended(True)))
    assert run(tmp_path, DispatchSettings(cluster="local", retry={"max_attempts": 2})) == "result"
    assert [r[2:4] for r in rows(tmp_path)][1:] == [
        ("unknown", "retry (unknown cause; resumes from the latest checkpoint)"), (None, "done")]


def test_a_give_up_names_the_cause_the_logs_and_the_attempt_log(tmp_path: Path, use) -> None:
    use(ScriptedBackend(*[ended(False, rc=1)] * 3))
    with pytest.raises(DispatchError) as err:
        run(tmp_path)
    assert str(err.value) == (
        "job: attempt 3 (job J3) failed: unknown (UncompletedJobError: x); give up: 3 failures of unknown "
        f"cause (unknown_retries=2). Logs: /logs/err; attempts: {tmp_path.resolve() / 'attempts.jsonl'}")
    assert err.value.kind == "unknown" and [r[5] for r in rows(tmp_path)] == [False, False, True]
