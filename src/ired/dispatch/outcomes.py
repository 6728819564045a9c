"""What went wrong in a pipeline run, read back from the run folders: per failed run, its failure class, the log
that says why and the command that reruns it. The pipeline prints these as the last lines of its output (the
Snakefile's ``onerror``), after keep-going has let every other run finish. Reads files only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ired.dispatch.attempts import in_flight, read_attempts
from ired.dispatch.failures import FailureKind
from ired.runs.paths import RunPaths


@dataclass(frozen=True)
class FailedRun:
    run: str
    stage: str  # "train" or "cross_eval <milestone>"
    failure: str  # the dispatcher's failure kind of the last attempt, else the run's status
    detail: str  # its reason / the run's detail, one line
    target: str  # the file whose rule failed: what the rerun command asks for
    log: str = ""  # the log that says why: the failed job's stderr, else the trainer's train.log ("" if none)


def _last_failure(folder: Path) -> tuple[str, str, str] | None:
    """(failure kind, reason, the job's stderr log) of the last attempt logged in ``folder``, unless it succeeded."""
    rows = read_attempts(folder)
    if not rows or rows[-1].get("action") == "done":
        return None
    last = rows[-1]
    kind = str(last.get("failure_kind") or FailureKind.unknown.value)
    return (kind, str(last.get("reason") or last.get("action") or ""), str(last.get("log") or ""))


def _log_of(run_dir: Path, job_log: str) -> str:
    """The log to read first: the failed job's stderr when it exists, else the run's first log (its train.log, else
    the pipeline's job log; ``ired logs <run>`` lists them all)."""
    from ired.runs.logs import run_logs

    if job_log and Path(job_log).is_file():
        return job_log
    found = run_logs(run_dir)
    return str(found[0].path) if found else ""


def _status(run_dir: Path) -> dict:
    try:
        return json.loads(RunPaths(run_dir).status.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def failed_runs(run_dirs: dict[str, Path], experiments: dict[str, str] | None = None) -> list[FailedRun]:
    """Runs (name -> run folder) whose training has no final.pt, or one of whose cross-evaluations gave up.

    ``experiments`` (run -> experiment id) names the target that reruns a failed cross-evaluation (the pipeline's
    per-experiment target); a failed training is rerun by asking for its final.pt.
    """
    found = []
    for run, run_dir in run_dirs.items():
        run_dir = Path(run_dir)
        paths = RunPaths(run_dir)
        if not paths.final.exists():
            if in_flight(run_dir) is not None:
                continue  # its job runs on (the head let go of it): not a failure (:func:`running_runs`)
            failure = _last_failure(run_dir)
            if failure is None:
                status = _status(run_dir)
                if not status:
                    continue  # never started (e.g. the head stopped first): nothing failed, it is still to do
                failure = (status.get("status") or "not trained", str(status.get("detail") or "see the train log"),
                           "")
            found.append(FailedRun(run, "train", failure[0], _one_line(failure[1]), str(paths.final),
                                   _log_of(run_dir, failure[2])))
            continue
        for records in paths.eval_records():
            failure = _last_failure(records)
            if failure is not None:
                target = (experiments or {}).get(run, str(paths.milestones))
                found.append(FailedRun(run, f"cross_eval {records.name.removeprefix('eval-')}", failure[0],
                                       _one_line(failure[1]), target, _log_of(run_dir, failure[2])))
    return found


def running_runs(run_dirs: dict[str, Path]) -> list[str]:
    """Runs whose training job is still in flight with no head watching it (the head let go: a logout, SIGTERM):
    the same command re-attaches to them."""
    return [run for run, run_dir in run_dirs.items()
            if not RunPaths(Path(run_dir)).final.exists() and in_flight(Path(run_dir)) is not None]


def _one_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def failure_report(failed: list[FailedRun], command: str) -> str:
    """The lines printed at the end of a pipeline run: each failed run, its failure class, the log that says why
    and its rerun command (``command`` with ``{target}`` where the failed run's target goes)."""
    if not failed:
        return "ired: no run failed (see Snakemake's log above for the job that did)"
    lines = [f"ired: {len(failed)} run(s) did not finish; every other run went on (keep-going). For each: its log "
             "and the command that reruns it (a training resumes from its newest checkpoint; `ired logs RUN` lists "
             "every log of a run):"]
    for f in failed:
        what = "stopped" if f.failure == FailureKind.interrupted else "failed"
        lines.append(f"  {f.run}: {f.stage} {what}: {f.failure} ({f.detail})")
        if f.log:
            lines.append(f"    log: {f.log}")
        lines.append("    rerun: " + command.replace("{target}", f.target))
    return "\n".join(lines)
