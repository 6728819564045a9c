"""The runs of a results folder as ``ired status`` and ``ired cancel`` see them: which runs a selection names, and
which of their dispatcher records (the training's, each cross-evaluation's) have a job in flight. Reads files only:
never Snakemake's lock, never a run's own lock for longer than a probe, so it works while a pipeline runs."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from ired.core.errors import ConfigError
from ired.runs.paths import JOB, RESULTS, RunPaths, default_scale, experiment_of


@dataclass(frozen=True)
class Run:
    name: str  # <experiment>-s<seed>
    experiment: str
    run_dir: Path

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.run_dir)

    def record_dirs(self) -> list[Path]:
        """The run's dispatcher record folders: the run folder (training), then each cross-evaluation's."""
        return [self.run_dir, *(p for p in self.paths.eval_records() if (p / JOB).exists())]


def results_folder(results: str | None = None, scale: str | None = None, root: Path = RESULTS) -> Path:
    """``results`` when given, else ``<root>/<scale>``, the scale defaulting as the pipeline's does
    (:func:`ired.runs.paths.default_scale`: the scale last run here, else the default). A folder that does not exist
    is a one-line error."""
    if results is not None:
        folder = Path(results)
    else:
        folder = root / (scale or default_scale(root))
    if not folder.is_dir():
        here = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ConfigError(f"{folder}: no such results folder (scales with results here: {', '.join(here) or 'none'}; "
                          "choose one with --scale or --results)")
    return folder


def find_runs(results: Path) -> list[Run]:
    """Every run folder of ``results`` (one ``results/<scale>/``), by name."""
    runs = []
    with os.scandir(results) as entries:
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith(".") and RunPaths(Path(entry.path)).is_run():
                runs.append(Run(entry.name, experiment_of(entry.name), Path(entry.path)))
    return sorted(runs, key=lambda r: r.name)


def select(runs: list[Run], patterns: list[str] | None = None, experiments: list[str] | None = None) -> list[Run]:
    """The runs whose name matches one of ``patterns`` and whose experiment matches one of ``experiments`` (shell
    globs: ``q208-*``, ``'lr_sweep*'``); a missing list selects everything."""
    chosen = runs
    if patterns:
        chosen = [r for r in chosen if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
    if experiments:
        chosen = [r for r in chosen if any(fnmatch.fnmatchcase(r.experiment, p) for p in experiments)]
    return chosen
