"""The results folder's layout in one place: where every file of a scale, a run and its dispatcher records is.

Paths only: nothing here reads or writes a file but ``results/.last_scale`` (:func:`last_scale`,
:func:`remember_scale`); torch-free. The layout, under the pipeline's working directory::

    results/.last_scale              the scale of the last real pipeline run here (the next command's default)
    results/<scale>/                 a scale: its run folders, tables (cross_eval.csv, summary.csv), plots
    results/<scale>/.dispatch/       the scale's job-array broker (ired.dispatch.broker)
    results/<scale>/<run>/           a run: config.yaml, resolved_config.yaml, status.json, metrics.jsonl,
                                     train.log, checkpoints/, final.pt, milestones/, eval/,
                                     inference_sweep.json; its dispatcher records (attempts.jsonl, job.json)
    results/<scale>/<run>/dispatch/  the dispatcher's state of the training (submitit's folder: job scripts,
                                     logs, outcomes; the head's lock, the OOM ladder, attempt configs)
    results/<scale>/<run>/dispatch/eval-<job>/
                                     the record folder of another job of the run (an evaluation), with its
                                     own attempts.jsonl, job.json and dispatch/
    logs/<scale>/<rule>/<run>.log    the pipeline's job log of a rule that ran for a run

A *record folder* is where one dispatched job keeps its records: the run folder (the training) or one of its
``dispatch/eval-<job>/`` folders. Paths keep the form they are given in (relative stays relative), so the
rules' patterns (``results/<scale>/{run}/final.pt``) come out as Snakemake expects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ired.runs.atomic import write_text_atomic

RESULTS = Path("results")  #: the results root, relative to the pipeline's working directory
LOGS = Path("logs")  #: the pipeline's job logs, beside the results root
LAST_SCALE = ".last_scale"  #: in the results root
DEFAULT_SCALE = "laptop"  #: the scale of a command that names none, when no pipeline has run here
DISPATCH = "dispatch"  #: the dispatcher's folder inside a record folder
BROKER = ".dispatch"  #: the job-array broker's folder inside a scale's folder
EVAL_RECORD = "eval-"  #: prefix of the record folder of a run's other jobs, in its dispatch/
ATTEMPTS = "attempts.jsonl"  #: in a record folder: one row per attempt (ired.dispatch.attempts)
JOB = "job.json"  #: in a record folder: the job in flight (ired.dispatch.attempts)
_RUN_NAME = re.compile(r"(?P<experiment>.+)-s(?P<seed>\d+)")  #: a run folder's name: <experiment>-s<seed>


def experiment_of(run: str) -> str:
    """``q208-s1`` -> ``q208`` (a run is ``<experiment>-s<seed>``; any other name is its own experiment)."""
    match = _RUN_NAME.fullmatch(run)
    return match.group("experiment") if match else run


@dataclass(frozen=True)
class ScaleFolder:
    """``results/<scale>/``: one scale's run folders, tables, plots and report."""

    folder: Path

    @property
    def scale(self) -> str:
        return self.folder.name

    @property
    def logs(self) -> Path:
        """``logs/<scale>``: beside the results root (``results/<scale>`` -> ``logs/<scale>``)."""
        return self.folder.parent.parent / LOGS / self.scale

    @property
    def broker(self) -> Path:
        """``results/<scale>/.dispatch``."""
        return self.folder / BROKER

    def run(self, name: str) -> RunPaths:
        """The run folder ``results/<scale>/<name>`` (``name`` may be a Snakemake wildcard, ``{run}``)."""
        return RunPaths(self.folder / name)

    def file(self, name: str) -> Path:
        """A table, plot or report of the scale, by its path relative to ``results/<scale>/``."""
        return self.folder / name

    def log(self, name: str) -> Path:
        """A pipeline log by its path under ``logs/<scale>/`` (``summary.log``, ``cross_eval/table.log``)."""
        return self.logs / name


@dataclass(frozen=True)
class RunPaths:
    """``results/<scale>/<run>/``: one run folder and every file in it."""

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    def is_run(self) -> bool:
        """A folder of ``results/<scale>/`` is a run when it holds its config, status, job or resolved config
        (written by resolve, the dispatcher or the trainer); tables, plots and the report are other files."""
        return any(p.exists() for p in (self.config, self.status, self.job, self.resolved_config))

    @property
    def scale_folder(self) -> ScaleFolder:
        return ScaleFolder(self.folder.parent)

    @property
    def scale(self) -> str:
        return self.folder.parent.name

    @property
    def config(self) -> Path:
        """The resolved run config (rule resolve)."""
        return self.folder / "config.yaml"

    @property
    def resolved_config(self) -> Path:
        """The config the trainer ran, every default filled in."""
        return self.folder / "resolved_config.yaml"

    @property
    def status(self) -> Path:
        return self.folder / "status.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.jsonl"

    @property
    def metrics_contract(self) -> Path:
        """The definitions of the metrics' columns (:data:`ired.core.metrics.DEFINITIONS`)."""
        return self.folder / "metrics_contract.json"

    @property
    def train_log(self) -> Path:
        return self.folder / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def final(self) -> Path:
        return self.folder / "final.pt"

    @property
    def best(self) -> Path:
        """``checkpoints/best.pt``: the lowest val_task_mse so far (the milestone ``best``)."""
        return self.checkpoints / "best.pt"

    def milestone_source(self, milestone: str) -> Path:
        """Where a milestone lives: ``last`` is final.pt, ``best`` and ``step_NNNNNNN`` are in checkpoints/."""
        if milestone == "last":
            return self.final
        return self.best if milestone == "best" else self.checkpoints / f"{milestone}.pt"

    @property
    def milestones(self) -> Path:
        return self.folder / "milestones"

    @property
    def evaluations(self) -> Path:
        """``eval/``: one JSON per milestone x protocol x split x weights."""
        return self.folder / "eval"

    def evaluation(self, milestone: str, protocol: str, split: str, weights: str) -> Path:
        return self.evaluations / milestone / f"{protocol}.{split}.{weights}.json"

    @property
    def inference_sweep(self) -> Path:
        return self.folder / "inference_sweep.json"

    @property
    def attempts(self) -> Path:
        """The training's attempts (the run folder is its record folder)."""
        return self.folder / ATTEMPTS

    @property
    def job(self) -> Path:
        """The training's job in flight."""
        return self.folder / JOB

    @property
    def dispatch(self) -> Path:
        """The training's dispatcher folder, ``<run>/dispatch``."""
        return dispatch_folder(self.folder)

    def eval_record(self, job: str) -> Path:
        """The record folder of the run's job ``eval-<job>`` (``all``: the rule evaluate's)."""
        return self.dispatch / f"{EVAL_RECORD}{job}"

    def eval_records(self) -> list[Path]:
        """The run's evaluation record folders that exist, by name."""
        if not self.dispatch.is_dir():
            return []
        return sorted(p for p in self.dispatch.glob(f"{EVAL_RECORD}*") if p.is_dir())

    def pipeline_log(self, rule: str) -> Path:
        """``logs/<scale>/<rule>/<run>.log``."""
        return self.scale_folder.log(f"{rule}/{self.name}.log")


def scale_folder(scale: str, root: Path = RESULTS) -> ScaleFolder:
    """``<root>/<scale>`` (``results/<scale>`` by default)."""
    return ScaleFolder(Path(root) / scale)


def run_paths(run_dir: str | Path) -> RunPaths:
    return RunPaths(Path(run_dir))


def run_of_evaluation(path: str | Path) -> RunPaths:
    """The run of an evaluation JSON (:meth:`RunPaths.evaluation`: ``<run>/eval/<milestone>/<name>.json``)."""
    return RunPaths(Path(path).parents[2])


def dispatch_folder(record_dir: str | Path) -> Path:
    """The dispatcher's folder of a record folder: ``<record>/dispatch``."""
    return Path(record_dir) / DISPATCH


def is_eval_record(record_dir: str | Path) -> bool:
    """A record folder of a run's other job (``<run>/dispatch/eval-<job>``), not the run folder itself."""
    record_dir = Path(record_dir)
    return record_dir.parent.name == DISPATCH


def owner_run(record_dir: str | Path) -> RunPaths:
    """The run a record folder belongs to: the run folder itself, or the run of ``<run>/dispatch/eval-*``."""
    record_dir = Path(record_dir)
    return RunPaths(record_dir.parent.parent if is_eval_record(record_dir) else record_dir)


def last_scale(root: Path = RESULTS) -> str | None:
    """The scale of the last real pipeline run here (``results/.last_scale``), None when there is none."""
    try:
        return (Path(root) / LAST_SCALE).read_text().strip() or None
    except OSError:
        return None


def remember_scale(scale: str, root: Path = RESULTS) -> None:
    """Write ``results/.last_scale`` (the pipeline's onstart: a real run, never a dry run)."""
    write_text_atomic(Path(root) / LAST_SCALE, f"{scale}\n")


def default_scale(root: Path = RESULTS) -> str:
    """The scale of a command that names none: the one last run here, else :data:`DEFAULT_SCALE`."""
    return last_scale(root) or DEFAULT_SCALE
