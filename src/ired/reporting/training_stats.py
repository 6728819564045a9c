"""Training statistics of several run folders over a window of steps: the numbers behind "does it collapse, does it
saturate" (docs/results/<scale>/: the README's Findings per scale).

``python -m ired.reporting.training_stats RUN_DIR... [--window FROM:TO] [--columns a,b] [--csv F] [--png F]``
reads each folder's ``metrics.jsonl`` (the raw weights being trained: every log row's means over its interval) and
prints one line per run: for each column its mean over the log rows whose step is in the window (both ends
included), its first and its last value in the window. The CSV has those numbers (one row per run and column); the
PNG draws each column against the step, one panel per column, one colour per experiment (the run's name up to its
``-s<seed>``), so a collapse (``pred_std`` -> 0, ``gradE_norm`` -> 0) or a saturation (``frac_sat`` -> 1) shows
against the runs beside it. Reads files only.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ired.core.errors import IredError, one_line_errors
from ired.core.metrics import TRAIN_COLUMNS
from ired.runs.jsonl import read_jsonl
from ired.runs.paths import RunPaths, experiment_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_COLUMNS = ("gradE_norm", "pred_std", "frac_sat", "margin", "loss_contrastive")


@dataclass(frozen=True)
class WindowStat:
    """One column of one run over the window: mean, first and last value, the number of rows with a value."""

    run: str
    column: str
    mean: float
    first: float
    last: float
    n: int


def parse_window(text: str | None) -> tuple[int, int]:
    """``FROM:TO`` (either end may be empty: the whole run on that side) -> (from, to), both included."""
    if not text:
        return 0, 2**62
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return (int(start) if start else 0), (int(stop) if stop else 2**62)
    except ValueError:
        raise IredError(f"--window {text!r}: expected FROM:TO in steps, e.g. 1501:2000 or 4000:") from None


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    path = RunPaths(run_dir).metrics
    if not path.is_file():
        raise IredError(f"{run_dir} is not a run folder (no metrics.jsonl)")
    return read_jsonl(path)


def window_stats(run: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
                 window: tuple[int, int]) -> list[WindowStat]:
    """Each column's mean, first and last value over the rows in the window; NaN when none has a value."""
    out = []
    for column in columns:
        values = [float(r[column]) for r in rows
                  if window[0] <= r["step"] <= window[1] and r.get(column) is not None]
        if values:
            out.append(WindowStat(run, column, statistics.fmean(values), values[0], values[-1], len(values)))
        else:
            out.append(WindowStat(run, column, math.nan, math.nan, math.nan, 0))
    return out


def describe(stats: Sequence[WindowStat]) -> str:
    """One line per run: ``run: column mean (first -> last), ...``; n/a for a column the run does not log."""
    parts = [f"{s.column} {s.mean:.4g} ({s.first:.4g} -> {s.last:.4g})" if s.n else f"{s.column} n/a"
             for s in stats]
    return f"{stats[0].run}: " + ", ".join(parts)


def stats_figure(runs: dict[str, list[dict[str, Any]]], columns: Sequence[str]) -> Figure:
    """Each column against the step, one panel per column, one colour per experiment (seeds share it)."""
    import matplotlib

    from ired.reporting.figure_canvas import new_figure

    fig = new_figure(5.0 * len(columns), 3.6)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    experiments = sorted({experiment_of(r) for r in runs})
    colours = matplotlib.colormaps["tab10"]  # one colour per experiment, 10 before they repeat
    for ax, column in zip(axes, columns, strict=True):
        labelled: set[str] = set()
        for run, rows in runs.items():
            points = [(r["step"], r[column]) for r in rows if r.get(column) is not None]
            if not points:
                continue
            experiment = experiment_of(run)
            label = None if experiment in labelled else experiment  # one legend entry per experiment
            labelled.add(experiment)
            colour = colours(experiments.index(experiment) % 10)
            ax.plot(*zip(*points, strict=True), color=colour, linewidth=0.8, alpha=0.8, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{column} (raw weights, log rows)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ired.reporting.training_stats",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl)")
    parser.add_argument("--window", default=None, help="FROM:TO, the steps averaged (default: every row)")
    parser.add_argument("--columns", default=",".join(DEFAULT_COLUMNS),
                        help=f"training columns of metrics.jsonl (default {','.join(DEFAULT_COLUMNS)})")
    parser.add_argument("--csv", default=None, help="write run, column, mean, first, last, n here")
    parser.add_argument("--png", default=None, help="draw each column against the step here")
    args = parser.parse_args(argv)
    with one_line_errors("training_stats"):
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in columns if c not in TRAIN_COLUMNS]
        if unknown:
            raise IredError(f"--columns: {', '.join(unknown)} not a training column of metrics.jsonl "
                            f"(columns: {', '.join(TRAIN_COLUMNS)})")
        window = parse_window(args.window)
        runs = {Path(r).name: read_rows(Path(r)) for r in args.runs}
        table = [window_stats(run, rows, columns, window) for run, rows in runs.items()]
        for stats in table:
            print(describe(stats))
        if args.csv:
            import csv

            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            with open(args.csv, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["run", "column", "mean", "first", "last", "n"])
                for stats in table:
                    writer.writerows([s.run, s.column, repr(s.mean), repr(s.first), repr(s.last), s.n]
                                     for s in stats)
        if args.png:
            from ired.reporting.figure_canvas import save_png

            save_png(stats_figure(runs, columns), args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
