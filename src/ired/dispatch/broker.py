"""Job arrays at sweep scale: the runs of one head share submissions, and one process at a time asks the scheduler.

Snakemake runs each training (and each cross-evaluation) of a pipeline as its own job in the head, each with its
own dispatcher process, and ignores job groups in local execution. With ``array`` set in the dispatch settings
(Slurm only), those processes do not call ``sbatch`` and ``squeue`` themselves. Each one writes a *request* into the
scale's broker folder (``results/<scale>/.dispatch/``) and waits on files. Whichever of them holds the broker's
``flock`` at a given moment acts as the broker for one *tick*:

- it submits the requests that are due (no new one came for ``window_s``, or the oldest waited 5 x ``window_s``,
  or ``max_size`` are waiting) as one
  submitit job array per group of requests that can share an sbatch line (same settings, memory and excluded
  nodes), writing each run's ``job.json`` before ``sbatch`` (the array's comment and the run's index) and after it
  (the task's job id ``<array>_<index>``);
- every ``poll_s`` it asks ``squeue`` once about every job a dispatcher waits on, and for those that left the
  queue (or wrote their result ``LINGER_S`` ago and are still listed) reads ``sacct`` for all of them together
  (until two reads agree) and writes each job's rows into ``ended/<job id>.sacct``, which its dispatcher reads
  instead of asking sacct itself.

So the scheduler sees one submission per array and one squeue per ``poll_s`` per head, however many runs wait;
the waiting processes only look at files. Everything per run stays per run: each dispatcher classifies its own
task's end, decides its own retry (a node excluded after exit 120, the OOM ladder) and requests again; the next
array takes the retries.

Never lost: a request is only submitted while its dispatcher lives (it holds the request's ``flock``); a
dispatcher stopped by Ctrl-C withdraws its request, or cancels its task, under the queue's lock; the broker
blocks SIGINT/SIGTERM between ``sbatch`` and the last ``job.json`` it writes. A head killed outright leaves
``job.json`` with the task's id (or, if it died inside ``sbatch``, the array's comment and the run's index, by
which the next head finds the task): the next head re-attaches instead of submitting again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ired.dispatch import sacct
from ired.dispatch.attempts import JobRecord, write_job_record
from ired.dispatch.executor import SlurmBackend, Submission
from ired.dispatch.policy import Plan
from ired.dispatch.settings import DispatchSettings
from ired.dispatch.submission import submit_patiently
from ired.runs.atomic import write_bytes_atomic, write_text_atomic
from ired.runs.paths import owner_run

log = logging.getLogger("ired.dispatch")

WAIT_S = 0.25  # a waiting dispatcher looks at its files this often
LINGER_S = 20.0  # a job still listed this long after writing its result is taken as ended (sacct as it is)


def broker_folder(run_dir: Path) -> Path:
    """``results/<scale>/.dispatch`` for a run folder ``results/<scale>/<run>`` or one of its record folders
    (``.../<run>/dispatch/eval-last``)."""
    return owner_run(run_dir).scale_folder.broker


# --------------------------------------------------------------------------------------------------
# Locks
# --------------------------------------------------------------------------------------------------


def _try_lock(path: Path, shared: bool = False) -> int | None:
    """An fd holding ``flock`` on ``path`` (created), or None when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (blocking: held only for short critical sections)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _held(path: Path) -> bool:
    """Some live process holds ``flock`` on ``path``."""
    fd = _try_lock(path, shared=True) if path.exists() else None
    if fd is None:
        return path.exists()
    os.close(fd)
    return False


@contextmanager
def _no_interrupts() -> Iterator[None]:
    """Delay SIGINT/SIGTERM/SIGHUP (and keep them from the commands started here) while this block runs."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _safe(job_id: str) -> str:
    return job_id.replace("/", "_")


# --------------------------------------------------------------------------------------------------
# The broker folder
# --------------------------------------------------------------------------------------------------


@dataclass
class Request:
    rid: str
    run_dir: str  # the dispatcher's record folder (its job.json)
    settings: dict[str, Any]
    plan: dict[str, Any]
    record: dict[str, Any]  # the JobRecord the dispatcher wrote before requesting (attempt, name, plan ...)
    created: float

    def key(self) -> str:
        """Requests that can share one sbatch line: same settings, memory and excluded nodes."""
        shared = {"settings": self.settings, "mem_gb": self.plan.get("mem_gb"), "exclude": self.plan.get("exclude")}
        return hashlib.sha1(json.dumps(shared, sort_keys=True).encode()).hexdigest()


class Broker:
    """The files of one scale's broker folder, and one tick of the broker role (:meth:`tick`)."""

    def __init__(self, folder: Path, settings: DispatchSettings) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.requests = self.folder / "requests"
        self.watch = self.folder / "watch"
        self.ended = self.folder / "ended"
        self.arrays = self.folder / "arrays"

    # ---- the dispatcher's side

    def add_request(self, run_dir: Path, plan: Plan, record: JobRecord, fn: Callable[..., Any],
                    args: tuple[Any, ...]) -> tuple[str, int]:
        """Write a request (the job's pickle, then its description) and hold its lock; returns (id, lock fd)."""
        import cloudpickle

        rid = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}"
        self.requests.mkdir(parents=True, exist_ok=True)
        lock = _try_lock(self.requests / f"{rid}.lock")
        assert lock is not None  # a fresh file
        write_bytes_atomic(self.requests / f"{rid}.pkl", cloudpickle.dumps((fn, args)))
        settings = self.settings.model_dump(mode="json", exclude={"retry", "poll_s", "poll_max_s", "array"})
        plan_d = {**asdict(plan), "exclude": list(plan.exclude)}
        req = Request(rid, str(run_dir), settings, plan_d, asdict(record), time.time())
        write_text_atomic(self.requests / f"{rid}.json", json.dumps(asdict(req)) + "\n")
        return rid, lock

    def answer(self, rid: str) -> dict[str, Any] | None:
        """The broker's answer to a request: ``{"job_id", "folder", "job_name", "comment", "index"}`` or
        ``{"error"}``; None while it waits."""
        return _read_json(self.requests / f"{rid}.answer.json")

    def withdraw(self, rid: str, lock: int) -> str | None:
        """Take a request back (its dispatcher was stopped); returns the job id it had been given, if any, which
        the caller cancels."""
        with _locked(self.folder / "queue.lock"):
            answer = self.answer(rid)
            self.drop(rid)
        os.close(lock)
        return answer.get("job_id") if answer else None

    def drop(self, rid: str) -> None:
        for suffix in (".json", ".pkl", ".intent.json", ".answer.json", ".lock"):
            (self.requests / f"{rid}{suffix}").unlink(missing_ok=True)

    def start_watch(self, job_id: str, folder: Path) -> int | None:
        """Ask the broker to watch this job (``watch/<id>.json``, held by the returned lock while waiting)."""
        self.watch.mkdir(parents=True, exist_ok=True)
        lock = _try_lock(self.watch / f"{_safe(job_id)}.lock")
        write_text_atomic(self.watch / f"{_safe(job_id)}.json", json.dumps({"job_id": job_id, "folder": str(folder)}))
        return lock

    def ended_rows(self, job_id: str) -> list[sacct.SacctRow] | None:
        """The sacct rows the broker wrote for this job once it ended, None before."""
        path = self.ended / f"{_safe(job_id)}.sacct"
        try:
            return sacct.parse_sacct(path.read_text())
        except OSError:
            return None

    def done_with(self, job_id: str) -> None:
        """The dispatcher has what it needs about this job: forget it."""
        for path in (self.watch / f"{_safe(job_id)}.json", self.ended / f"{_safe(job_id)}.sacct",
                     self.watch / f"{_safe(job_id)}.lock"):
            path.unlink(missing_ok=True)

    # ---- the broker's side

    def tick(self, array_max: int, window_s: float, poll_s: float) -> None:
        """One turn of the broker role, if no other process has it: submit what is due, poll if it is time."""
        fd = _try_lock(self.folder / "broker.lock")
        if fd is None:
            return
        try:
            self._submit_due(array_max, window_s)
            last = _read_json(self.folder / "poll.json") or {}
            if time.time() - float(last.get("at", 0.0)) >= poll_s:
                write_text_atomic(self.folder / "poll.json", json.dumps({"at": time.time(), "pid": os.getpid()}))
                self._poll()
        finally:
            os.close(fd)

    def _pending(self) -> list[Request]:
        found = []
        for path in sorted(self.requests.glob("*.json")) if self.requests.is_dir() else []:
            if path.name.endswith((".answer.json", ".intent.json")):
                continue
            rid = path.name[: -len(".json")]
            if (self.requests / f"{rid}.answer.json").exists():
                continue
            if not _held(self.requests / f"{rid}.lock"):
                self.drop(rid)  # its dispatcher is gone (killed head): its run is requested again by the next one
                continue
            data = _read_json(path)
            if data is not None:
                found.append(Request(**data))
        return found

    def _adopt(self, req: Request, intent: dict[str, Any]) -> bool:
        """A request a broker began to submit and died in (its intent, no answer): answer it with the task that
        sbatch made, if it made one (found by the array's name and comment). False: submit it again."""
        found = sacct.find_job(intent["job_name"], intent["comment"], index=intent.get("index"))
        if found is None:
            (self.requests / f"{req.rid}.intent.json").unlink(missing_ok=True)
            return False
        rec = JobRecord(**{**req.record, "job_id": found, "job_name": intent["job_name"], "folder": intent["folder"],
                           "comment": intent["comment"], "array_index": intent.get("index")})
        write_job_record(Path(req.run_dir), rec)
        write_text_atomic(self.requests / f"{req.rid}.answer.json", json.dumps(
            {"job_id": found, "folder": intent["folder"], "job_name": intent["job_name"],
             "comment": intent["comment"], "index": intent.get("index")}))
        log.warning("%s: adopted job %s, submitted by a broker that died before it could say so", req.run_dir, found)
        return True

    def _submit_due(self, array_max: int, window_s: float) -> None:
        if not self.requests.is_dir():
            return
        with _locked(self.folder / "queue.lock"):
            groups: dict[str, list[Request]] = {}
            for req in self._pending():
                intent = _read_json(self.requests / f"{req.rid}.intent.json")
                if intent is not None and self._adopt(req, intent):
                    continue
                groups.setdefault(req.key(), []).append(req)
            now = time.time()
            for group in groups.values():
                group.sort(key=lambda r: r.created)
                # due: a full array, or no new request for window_s (a pipeline's runs become ready one after
                # another, seconds apart), or the first one has waited 5 x window_s
                while group and (len(group) >= array_max or now - group[-1].created >= window_s
                                 or now - group[0].created >= 5 * window_s):
                    chunk, group[:] = group[:array_max], group[array_max:]
                    self._submit(chunk)

    def _submit(self, chunk: list[Request]) -> None:
        """One sbatch for the chunk (an array when it has several): job.json before and after, answers after."""
        import cloudpickle

        first = chunk[0]
        settings = DispatchSettings.model_validate({**first.settings, "retry": self.settings.retry.model_dump()})
        plan = Plan(**{**first.plan, "exclude": tuple(first.plan.get("exclude", ()))})
        tag = uuid.uuid4().hex[:12]
        folder = self.arrays / tag
        name = f"{settings.job_name_prefix}-{self.folder.parent.name}-array"
        comment = f"ired-array:{tag}"
        index = (lambda i: i) if len(chunk) > 1 else (lambda i: None)  # a batch of one is a plain job
        for i, req in enumerate(chunk):  # the intent, on disk before sbatch: whoever comes after a broker that died
            rec = JobRecord(**{**req.record, "job_id": None, "job_name": name, "folder": str(folder),  # inside it
                               "comment": comment, "array_index": index(i)})  # finds the task instead of resubmitting
            write_job_record(Path(req.run_dir), rec)
            write_text_atomic(self.requests / f"{req.rid}.intent.json", json.dumps(
                {"job_name": name, "folder": str(folder), "comment": comment, "index": index(i)}))
        try:
            calls = [cloudpickle.loads((self.requests / f"{r.rid}.pkl").read_bytes()) for r in chunk]
            with _no_interrupts():
                ex = SlurmBackend(settings).executor(folder, plan, name, comment)

                def submit() -> list[Any]:
                    with ex.batch():
                        return [ex.submit(fn, *args) for fn, args in calls]

                jobs = submit_patiently(submit, settings, len(calls), name)
                for i, (req, job) in enumerate(zip(chunk, jobs, strict=True)):
                    job_id = str(job.job_id)
                    rec = JobRecord(**{**req.record, "job_id": job_id, "job_name": name, "folder": str(folder),
                                       "comment": comment, "array_index": index(i), "submitted_at": time.time()})
                    write_job_record(Path(req.run_dir), rec)
                    write_text_atomic(self.requests / f"{req.rid}.answer.json", json.dumps(
                        {"job_id": job_id, "folder": str(folder), "job_name": name, "comment": comment,
                         "index": index(i)}))
        except Exception as exc:  # noqa: BLE001 - sbatch refused: each dispatcher reports it as its own error
            text = f"{type(exc).__name__}: {' '.join(str(exc).split())[:1000]}"
            for req in chunk:
                if not (self.requests / f"{req.rid}.answer.json").exists():
                    write_text_atomic(self.requests / f"{req.rid}.answer.json", json.dumps({"error": text}))
            return
        log.info("submitted %d run(s) as %s %s (%s)", len(chunk), "array" if len(chunk) > 1 else "job",
                 str(jobs[0].job_id).split("_")[0], ", ".join(Path(r.run_dir).name for r in chunk))

    def _poll(self) -> None:
        """One squeue for every watched job; one sacct (read until it settles) for those that ended."""
        watched: dict[str, Path] = {}
        for path in self.watch.glob("*.json") if self.watch.is_dir() else []:
            data = _read_json(path)
            if not data:
                continue
            if not _held(path.with_suffix(".lock")):  # its dispatcher is gone: the next head watches it again
                path.unlink(missing_ok=True)
                path.with_suffix(".lock").unlink(missing_ok=True)
                continue
            if not (self.ended / f"{_safe(data['job_id'])}.sacct").exists():
                watched[data["job_id"]] = Path(data["folder"])
        if not watched:
            return
        live = sacct.queue(sorted(watched))
        if live is None:
            return  # squeue did not answer: next time
        from submitit.core.utils import JobPaths

        def lingering(job_id: str) -> bool:
            """Wrote its result LINGER_S ago and is still listed (a requeued or slowly completing job)."""
            try:
                age = time.time() - JobPaths(watched[job_id], job_id=job_id, task_id=0).result_pickle.stat().st_mtime
            except OSError:
                return False
            return age >= LINGER_S

        finished = {j for j in watched if j not in live or lingering(j)}
        if not finished:
            return
        lingering_ids = {j for j in finished if j in live}  # take sacct as it is: the result decides
        texts = sacct.read_final_many(sorted(finished), lingering_ids)
        self.ended.mkdir(parents=True, exist_ok=True)
        for job_id in finished:
            write_text_atomic(self.ended / f"{_safe(job_id)}.sacct", texts.get(job_id, ""))


class ArrayBackend(SlurmBackend):
    """Slurm through the head's broker: requests instead of sbatch, file waits instead of squeue (module doc)."""

    def __init__(self, settings: DispatchSettings, folder: Path) -> None:
        super().__init__(settings)
        assert settings.array is not None
        self.array = settings.array
        self.broker = Broker(folder, settings)

    def _tick(self) -> None:
        self.broker.tick(self.array.max_size, self.array.window_s, self.array.poll_s)

    def request(self, run_dir: Path, record: JobRecord, plan: Plan, folder: Path, job_name: str, comment: str,
                fn: Callable[..., Any], args: tuple[Any, ...],
                stop: Callable[[], bool] | None = None) -> Submission | None:
        from ired.core.errors import DispatchError

        rid, lock = self.broker.add_request(run_dir, plan, record, fn, args)
        try:
            while True:
                answer = self.broker.answer(rid)
                if answer is not None:
                    break
                if stop is not None and stop():
                    job_id = self.broker.withdraw(rid, lock)
                    if job_id:  # submitted meanwhile: cancel the task
                        self.cancel([job_id])
                    return None
                self._tick()
                time.sleep(WAIT_S)
        except KeyboardInterrupt:
            job_id = self.broker.withdraw(rid, lock)
            if job_id:
                self.cancel([job_id])
            raise
        self.broker.drop(rid)
        os.close(lock)
        if "error" in answer:
            raise DispatchError(f"{run_dir}: submitting the array failed: {answer['error']}")
        return Submission(answer["job_id"], Path(answer["folder"]), answer["job_name"], answer["comment"],
                          answer["index"])

    def wait(self, job_id: str, folder: Path | None = None, stop: Callable[[], bool] | None = None) -> None:
        lock = self.broker.start_watch(job_id, folder or Path("."))
        try:
            while self.broker.ended_rows(job_id) is None and not (stop is not None and stop()):
                self._tick()
                time.sleep(WAIT_S)
        finally:
            if lock is not None:
                os.close(lock)

    def accounting(self, job_id: str) -> list[sacct.SacctRow]:
        rows = self.broker.ended_rows(job_id)
        self.broker.done_with(job_id)
        return rows if rows is not None else sacct.read_final(job_id)
