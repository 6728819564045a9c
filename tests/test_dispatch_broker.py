"""The broker's queue without a cluster: which requests are due and how they group into arrays, a dead
dispatcher's request is never submitted, a withdrawn one gives back the job it got. sbatch is replaced by a
recorder; the real submissions are in tests/test_dispatch_arrays.py and tests/test_sweep_slurm.py."""

from __future__ import annotations

import operator
import os
import time
from pathlib import Path

from ired.dispatch.attempts import JobRecord
from ired.dispatch.broker import Broker, broker_folder
from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings

SETTINGS = DispatchSettings(cluster="slurm", array={"max_size": 3, "window_s": 0.5, "poll_s": 1})


def _broker(tmp_path: Path, submitted: list[list[str]]) -> Broker:
    broker = Broker(tmp_path / ".dispatch", SETTINGS)

    def record(chunk):  # instead of sbatch: remember which runs went together, answer each
        submitted.append([Path(r.run_dir).name for r in chunk])
        for i, req in enumerate(chunk):
            (broker.requests / f"{req.rid}.answer.json").write_text(
                f'{{"job_id": "7_{i}", "folder": "f", "job_name": "n", "comment": "c", "index": {i}}}')

    broker._submit = record  # type: ignore[method-assign]
    return broker


def _request(broker: Broker, tmp_path: Path, run: str, plan: Plan) -> tuple[str, int]:
    record = JobRecord(1, None, f"ired-tiny-{run}", "slurm", str(tmp_path / run / "dispatch"), {}, time.time())
    return broker.add_request(tmp_path / run, plan, record, operator.add, (1, 2))


def test_requests_wait_for_a_quiet_window_then_share_arrays_by_resources(tmp_path: Path) -> None:
    submitted: list[list[str]] = []
    broker = _broker(tmp_path, submitted)
    plan, other = Plan(mem_gb=1.0), Plan(mem_gb=1.0, exclude=("node1",))
    locks = [_request(broker, tmp_path, f"r{i}", plan)[1] for i in range(4)] + [
        _request(broker, tmp_path, "x0", other)[1]]
    broker.tick(3, 0.5, 60)
    assert submitted == [["r0", "r1", "r2"]]  # a full array (max_size 3) goes at once; the rest waits
    time.sleep(0.6)
    broker.tick(3, 0.5, 60)
    assert sorted(submitted[1:]) == [["r3"], ["x0"]]  # quiet for window_s; other excluded nodes, other array
    for fd in locks:
        os.close(fd)


def test_a_dead_dispatchers_request_is_dropped_and_a_withdrawn_one_returns_its_job(tmp_path: Path) -> None:
    submitted: list[list[str]] = []
    broker = _broker(tmp_path, submitted)
    rid, lock = _request(broker, tmp_path, "dead", Plan(mem_gb=1.0))
    os.close(lock)  # its process is gone: nobody holds the request's lock
    time.sleep(0.6)
    broker.tick(3, 0.5, 60)
    assert submitted == [] and not list(broker.requests.glob(f"{rid}*"))
    rid, lock = _request(broker, tmp_path, "live", Plan(mem_gb=1.0))
    time.sleep(0.6)
    broker.tick(3, 0.5, 60)
    assert submitted == [["live"]] and broker.answer(rid)["job_id"] == "7_0"
    assert broker.withdraw(rid, lock) == "7_0"  # the caller cancels it
    assert not list(broker.requests.glob(f"{rid}*"))


def test_the_broker_folder_is_the_scales() -> None:
    assert broker_folder(Path("/r/results/tiny/q101-s0")) == Path("/r/results/tiny/.dispatch")
    assert broker_folder(Path("/r/results/tiny/q101-s0/dispatch/eval-last")) == Path("/r/results/tiny/.dispatch")


def test_cancel_of_a_run_whose_request_waits_for_its_array(tmp_path: Path) -> None:
    """`ired cancel` while the run's request still waits in the broker (nothing submitted: a long window): the
    dispatcher withdraws it and logs the attempt interrupted; `ired status` showed it queued before."""
    import threading

    from _dispatch_util import attempts, tiny_config

    from ired.core.errors import DispatchError
    from ired.dispatch import run_training
    from ired.dispatch.cancel import cancel_runs
    from ired.dispatch.runs import find_runs
    from ired.dispatch.status import collect

    settings = DispatchSettings(cluster="slurm", array={"max_size": 16, "window_s": 600, "poll_s": 600})
    results = tmp_path / "results" / "tiny"
    cfg = tiny_config(tmp_path, "wait")
    errors: list[BaseException] = []

    def head() -> None:
        try:
            run_training(cfg, results / "wait-s0", settings)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    thread = threading.Thread(target=head)
    thread.start()
    deadline = time.time() + 60
    while time.time() < deadline and not list((results / ".dispatch" / "requests").glob("*.json")):
        time.sleep(0.1)
    found, _ = collect(find_runs(results), lambda ids: {}, lambda ids: [])
    assert [(s.run, s.state, s.job_id) for s in found] == [("wait-s0", "queued", None)]
    done = cancel_runs(find_runs(results), wait_s=30)
    thread.join(timeout=30)
    assert [(c.run, c.job_id, c.outcome) for c in done] == [("wait-s0", None, "interrupted")]
    assert len(errors) == 1 and isinstance(errors[0], DispatchError) and errors[0].stopped
    assert "its request (not submitted yet)" in str(errors[0])
    assert [(r["attempt"], r["job_id"], r["failure_kind"]) for r in attempts(results / "wait-s0")] == [
        (1, "-", "interrupted")]
    assert not list((results / ".dispatch" / "requests").glob("*"))
    assert not (results / ".dispatch" / "arrays").exists()  # nothing was ever submitted
