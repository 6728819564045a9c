"""What a run's jobs are called: the record folder inside a run folder, the Slurm job name of every attempt
and each attempt's tag (its ``--comment``). Pure: names from paths and settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ired.dispatch.settings import DispatchSettings
from ired.runs.paths import is_eval_record, owner_run


def job_label(run_dir: Path) -> str:
    """``<scale>-<run>`` for a run folder ``results/<scale>/<run>``; ``<scale>-<run>.<job>`` for the record
    folder of another job of the run (``results/<scale>/<run>/dispatch/eval-last`` ->
    ``tiny-q101-s0.eval-last``)."""
    owner = owner_run(run_dir)
    label = f"{owner.scale}-{owner.name}"
    return f"{label}.{Path(run_dir).name}" if is_eval_record(run_dir) else label


def job_name(settings: DispatchSettings, run_dir: Path) -> str:
    """The Slurm job name of every attempt of the run: ``ired-<scale>-<run>`` (``squeue -n``/``scancel -n``
    select a run's job, whatever its attempt; the attempt is in the job's comment, :func:`attempt_tag`)."""
    return f"{settings.job_name_prefix}-{job_label(run_dir)}"


def attempt_tag(run_dir: Path, attempt: int) -> str:
    """The job's comment: ``ired:<hash of the record folder>:a<attempt>``. Unique per folder and attempt, it
    finds a job whose id was never recorded (the head died right after sbatch) without taking another
    checkout's job."""
    return f"ired:{hashlib.sha1(str(run_dir).encode()).hexdigest()[:10]}:a{attempt}"
