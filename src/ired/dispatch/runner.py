"""The dispatcher's entry points: train a run, or call a function, as jobs until done for good; the loop
repeats submit, wait, classify, decide, log.

Two kinds of work use it: training runs (:func:`run_training`, a run folder filled by ``ired train``; OOM
fallbacks rewrite the attempt's config) and any picklable function (:func:`dispatch`, e.g. a cross-evaluation
job; only resources can change between attempts). Both keep their records in the run folder: ``job.json`` (the
attempt in flight, written before waiting) and ``attempts.jsonl`` (one row per real attempt, appended once),
so rerunning the same command after the head process died re-attaches instead of submitting a duplicate.

Done is done. A pipeline (Snakemake) reruns a job whose head died or was stopped, and first deletes the
outputs that job declared. So the dispatcher (1) reads ``job.json`` before anything else: an attempt still in
flight, or one that finished while no head was watching, is collected, never submitted again; (2) collects a
*finished* run (completed or diverged, nothing in flight) without any job, restoring ``final.pt`` from the
run's own checkpoint when it is gone; (3) trains afresh only when asked to (``force``: the pipeline's
``--forcerun``) or when the run folder holds a run of another config (the config is the run's identity). A
head stopped by Ctrl-C (:func:`stop_on_signals`) cancels the job it waits on, logs an ``interrupted`` attempt
and says so; the next command resumes the run from its newest checkpoint. A head sent SIGHUP or SIGTERM (a
logout) lets go instead: the job runs on and the next command re-attaches. A job that Slurm requeued by itself
(same job id) is logged as one attempt per segment, read from ``sacct -D`` (``preempted``). A time limit or a
preemption ends a *slice*: the trainer checkpointed, the attempt is logged ``timeout`` / ``preempted`` with
its newest checkpoint ``step``, and the run is resubmitted while slices advance it
(:mod:`ired.dispatch.policy`).

The loop and its phases (adopt, submit, wait, settle) are :mod:`ired.dispatch.loop`; what differs between a
training run and a function call, :mod:`ired.dispatch.tasks` and :mod:`ired.dispatch.train_task`; stopping and
letting go, :mod:`ired.dispatch.stopping`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ired.core.errors import DispatchError
from ired.dispatch import ladder
from ired.dispatch.attempts import read_attempts, read_job_record
from ired.dispatch.failures import FailureKind
from ired.dispatch.loop import DispatchResult, drive
from ired.dispatch.settings import DispatchSettings

# what the pipeline's scripts and hooks import from here: a head's reaction to signals, a line on its terminal
from ired.dispatch.tasks import CallTask
from ired.dispatch.train_task import TrainTask


def run_training(config_path: str | Path, out_dir: str | Path, settings: DispatchSettings, *,
                 force: bool = False, retrain_changed: bool = False,
                 keep_diverged: bool = False) -> DispatchResult:
    """Train ``config_path`` into ``out_dir`` through the dispatcher; blocks until the run has finished for
    good.

    An attempt in flight (``job.json``, e.g. from a head that was killed) is re-attached to, whatever else the
    folder says. Otherwise the folder decides, and only two things ever delete a result: ``force`` (the
    pipeline's ``--forcerun``: drop ``checkpoints/`` and ``final.pt`` and train from step 0), and a folder
    that holds a run of another config (its ``resolved_config.yaml`` differs in a key that changes results:
    the config is the run's identity, so the old run is dropped the same way). A finished run (completed or
    diverged) is collected: no job, ``final.pt`` restored from the run's own checkpoint when it is gone.
    Anything else resumes from the newest checkpoint. With ``keep_diverged`` a diverged run is a result, not
    an error: its newest checkpoint becomes ``final.pt`` and the result says ``diverged``. Raises
    :class:`ired.core.errors.ConfigError` (before any job) for an invalid config and :class:`DispatchError`
    when an attempt fails in a way the policy does not retry.
    """
    run_dir = Path(out_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    task = TrainTask(Path(config_path).resolve(), run_dir)
    restarted = False
    if _settled(run_dir):
        changed = task.other_config()
        if force or (changed and retrain_changed):
            why = "forced" if force else f"its config changed ({', '.join(changed[:5])})"
            restarted = task.drop_result(why)
            if changed:
                ladder.forget(run_dir)  # another config, other memory needs; a forced retrain keeps it
        elif task.finished() is not None and not changed:
            previous = task.finished()
            if previous is not None and (previous == "completed" or keep_diverged):
                task.collect(previous)
                return DispatchResult(run_dir, read_attempts(run_dir), task.status(), skipped=True,
                                      diverged=previous == "diverged")
    try:
        result = drive(task, settings, run_dir)
    except DispatchError as exc:
        if not (keep_diverged and exc.kind is FailureKind.diverged):
            raise
        task.keep_diverged(exc)
        return DispatchResult(run_dir, read_attempts(run_dir), task.status(), restarted=restarted,
                              diverged=True)
    result.restarted = restarted
    return result


def _settled(run_dir: Path) -> bool:
    """No attempt is in flight: every recorded job has its row in attempts.jsonl."""
    record = read_job_record(run_dir)
    rows = read_attempts(run_dir)
    return record is None or any(r["attempt"] >= record.attempt for r in rows)


def dispatch(fn: Callable[..., Any], *args: Any, settings: DispatchSettings, run_dir: str | Path,
             name: str | None = None) -> Any:
    """Run ``fn(*args)`` as a job with the same retries, attempt log and re-attach as training; return its
    value.

    ``run_dir`` holds ``job.json``, ``attempts.jsonl`` and the job logs; use one folder per distinct call.
    """
    run_dir = Path(run_dir).resolve()
    task = CallTask(str(name or getattr(fn, "__name__", "job")), fn, args)
    return drive(task, settings, run_dir).result
