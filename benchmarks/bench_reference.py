"""Side-by-side speed of ired and the IRED release's own training code: ``python -m benchmarks.bench_reference``.

``python -m benchmarks.bench_reference --release PATH --release-python PATH`` times training steps of

- ``ired``: ``Trainer.train_step`` (draw the batch, forward, double backward, clip, Adam, EMA) in this process;
- ``release``: the release's own ``Trainer1D.train()`` loop (github yilundu/ired_code_release, checked out at
  PATH), driven in its own Python environment by ``bench_release_driver.py`` (beside this file; it imports the
  release from PATH and contains none of its code),

at the reference's laptop configuration (config/scales/reference_laptop.yaml: n = 5, batch 256, width 512,
time_dim 128, Adam lr 1e-4, vector head) for ``denoise`` and ``contrastive`` (softplus + 2-step mined
negatives, weight 0.5), with the same torch thread count in both processes. After ``--warmup`` untimed steps of
each, ``--steps`` steps of each are timed in blocks of ``--block`` that alternate (ired, release, ired, release,
...), so a change of machine load falls on both alike. Only one of the two processes works at a time.

Prints, per objective and implementation, seconds per step (median, quartiles, min, max over the timed steps),
process CPU seconds per step (all threads) and the seconds of the step spent drawing the batch; the ratio of
the medians; the torch versions and thread counts of both; and ``/proc/loadavg`` before and after (and the
1-minute load seen at each block). ``--markdown`` also prints the table as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import torch

from ired.core.errors import IredError

IMPLEMENTATIONS = ("ired", "release")
OBJECTIVES = ("denoise", "contrastive")
SERIES = ("wall", "cpu", "data")  # per step: wall seconds, process CPU seconds, wall seconds drawing the batch
DRIVER = Path(__file__).with_name("bench_release_driver.py")


class BenchError(IredError):
    """The benchmark could not run (the release's driver failed or answered something unexpected)."""


# --------------------------------------------------------------------------------------------------
# Parsing and summarising (no timing here: tests/test_bench_reference.py)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Seconds per step over the timed steps."""

    n: int
    median: float
    q1: float
    q3: float
    low: float
    high: float


def summarize(values: Sequence[float]) -> Summary:
    """Median, quartiles (inclusive method), min and max of ``values``; at least one value."""
    if not values:
        raise ValueError("summarize: no values")
    xs = sorted(float(v) for v in values)
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else (xs[0], xs[0], xs[0])
    return Summary(len(xs), statistics.median(xs), q1, q3, xs[0], xs[-1])


@dataclass(frozen=True)
class LoadAvg:
    """One reading of /proc/loadavg: the 1, 5 and 15-minute load averages and the runnable/total tasks."""

    one: float
    five: float
    fifteen: float
    tasks: str

    def __str__(self) -> str:
        return f"{self.one:.2f} {self.five:.2f} {self.fifteen:.2f} (runnable/tasks {self.tasks})"


def parse_loadavg(text: str) -> LoadAvg:
    """Parse the text of /proc/loadavg (``0.52 0.58 0.59 2/123 4567``)."""
    fields = text.split()
    if len(fields) < 4:
        raise ValueError(f"/proc/loadavg: expected '1min 5min 15min running/total pid', got {text!r}")
    return LoadAvg(float(fields[0]), float(fields[1]), float(fields[2]), fields[3])


def read_loadavg(path: str = "/proc/loadavg") -> LoadAvg | None:
    """The machine's load now, or None where there is no /proc/loadavg."""
    try:
        return parse_loadavg(Path(path).read_text())
    except OSError:
        return None


def schedule(steps: int, block: int, implementations: Sequence[str] = IMPLEMENTATIONS) -> list[tuple[str, int]]:
    """Blocks ``(implementation, steps)`` alternating between ``implementations``: each gets ``steps`` in all.

    >>> schedule(5, 2)
    [('ired', 2), ('release', 2), ('ired', 2), ('release', 2), ('ired', 1), ('release', 1)]
    """
    if steps < 1 or block < 1:
        raise ValueError(f"schedule: steps and block must be >= 1 (got steps={steps}, block={block})")
    out: list[tuple[str, int]] = []
    done = 0
    while done < steps:
        size = min(block, steps - done)
        out += [(name, size) for name in implementations]
        done += size
    return out


def parse_reply(line: str, steps: int) -> dict[str, list[Any]]:
    """The driver's answer to a request of ``steps`` steps: one JSON object with a list per series (checked), and
    any other list of one value per step (the training quantities; None where an objective has none)."""
    try:
        reply = json.loads(line)
    except json.JSONDecodeError:
        raise BenchError(f"release driver: expected a JSON line, got {line.strip()[:200]!r}") from None
    if not isinstance(reply, dict) or any(not isinstance(reply.get(k), list) for k in SERIES):
        raise BenchError(
            f"release driver: expected an object with lists {', '.join(SERIES)}, got {line.strip()[:200]!r}"
        )
    out: dict[str, list[float]] = {}
    for key in SERIES:
        values = reply[key]
        if len(values) != steps or not all(isinstance(v, (int, float)) and v >= 0 for v in values):
            raise BenchError(
                f"release driver: {key!r} must hold {steps} non-negative numbers (one per step), got {values!r:.200}"
            )
        out[key] = [float(v) for v in values]
    # the step's training quantities (benchmarks.parity_release), passed on as they are
    for key, values in reply.items():
        if key not in SERIES and isinstance(values, list) and len(values) == steps:
            out[key] = values
    return out


def parse_ready(line: str) -> dict[str, Any]:
    """The driver's first line: ``{"ready": true, "torch": ..., "threads": ..., ...}``."""
    try:
        ready = json.loads(line)
    except json.JSONDecodeError:
        ready = None
    if not isinstance(ready, dict) or ready.get("ready") is not True or not isinstance(ready.get("threads"), int):
        raise BenchError(f"release driver: expected its ready line, got {line.strip()[:200]!r}")
    return ready


Results = dict[tuple[str, str], dict[str, list[float]]]  # (objective, implementation) -> series -> per step


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def format_table(results: Results) -> list[str]:
    """One line per (objective, implementation) and the ratio of medians per objective, aligned columns."""
    header = ("objective", "implementation", "steps", "median_s", "q1_s", "q3_s", "min_s", "max_s", "cpu_median_s",
              "data_median_s")
    rows: list[tuple[str, ...]] = [header]
    ratios: list[str] = []
    for objective in OBJECTIVES:
        medians = {}
        for name in IMPLEMENTATIONS:
            series = results.get((objective, name))
            if series is None:
                continue
            s = summarize(series["wall"])
            medians[name] = s.median
            rows.append((objective, name, str(s.n), _fmt(s.median), _fmt(s.q1), _fmt(s.q3), _fmt(s.low), _fmt(s.high),
                         _fmt(summarize(series["cpu"]).median), _fmt(summarize(series["data"]).median)))
        if len(medians) == 2:
            ratios.append(f"{objective}: ired/release median seconds per step = "
                          f"{medians['ired'] / medians['release']:.2f}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    return lines + ratios


def format_markdown(results: Results) -> list[str]:
    """The same numbers as a Markdown table (seconds per step; ratio = ired / release, medians)."""
    lines = ["| objective | implementation | median s/step | quartiles | min-max | CPU s/step (median) | "
             "of which drawing the batch | ired / release |",
             "|---|---|---|---|---|---|---|---|"]
    for objective in OBJECTIVES:
        present = [n for n in IMPLEMENTATIONS if (objective, n) in results]
        walls = {n: summarize(results[(objective, n)]["wall"]) for n in present}
        for name in present:
            s, series = walls[name], results[(objective, name)]
            ratio = (f"{walls['ired'].median / walls['release'].median:.2f}"
                     if name == "ired" and len(walls) == 2 else "")
            lines.append(f"| {objective} | {name} | {s.median:.3f} | {s.q1:.3f}-{s.q3:.3f} | "
                         f"{s.low:.3f}-{s.high:.3f} | "
                         f"{summarize(series['cpu']).median:.3f} | {summarize(series['data']).median:.3f} | {ratio} |")
    return lines


# --------------------------------------------------------------------------------------------------
# The two implementations
# --------------------------------------------------------------------------------------------------


class _IredSteps:
    """ired's Trainer for one objective at the reference laptop configuration, stepped k steps at a time."""

    def __init__(self, root: Path, objective: str, threads: int, seed: int, out: Path) -> None:
        from benchmarks.parity import run_config
        from ired.training.trainer import Trainer

        cfg = run_config(root, objective, seed, {"device": "cpu", "train": {"threads": threads}})
        self.cfg = cfg
        self.trainer = Trainer(cfg, out, echo=False)
        self._data: list[float] = []
        draw = self.trainer.stream.next

        def timed_draw(batch: int, helper: Executor | None = None) -> Any:
            start = time.perf_counter()
            problems = draw(batch, helper)
            self._data.append(time.perf_counter() - start)
            return problems

        self.trainer.stream.next = timed_draw  # type: ignore[method-assign]

    def run(self, steps: int) -> dict[str, list[float]]:
        wall: list[float] = []
        cpu: list[float] = []
        self._data = []
        for _ in range(steps):
            w, c = time.perf_counter(), time.process_time()
            self.trainer.train_step()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        return {"wall": wall, "cpu": cpu, "data": self._data}


class ReleaseProcess:
    """The release's driver in the release's Python; one request (objective, steps) at a time."""

    def __init__(self, python: str, release: Path, threads: int, seed: int, log: IO[str]) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [python, str(DRIVER), "--release", str(release), "--rank", "5", "--batch-size", "256", "--lr", "1e-4",
             "--threads", str(threads), "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        )
        self.ready = parse_ready(self._line())

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.log.flush()
            tail = Path(self.log.name).read_text()[-2000:]
            raise BenchError(f"release driver exited (code {self.process.returncode}); its last output:\n{tail}")
        return line

    def run(self, objective: str, steps: int, record: Path | None = None, step_seed: int = 0) -> dict[str, list[Any]]:
        """``steps`` more steps of ``objective``; with ``record``, an objective's first steps reseeded per step and
        saved to that file (bench_release_driver's recorded run)."""
        assert self.process.stdin is not None
        request: dict[str, Any] = {"objective": objective, "steps": steps}
        if record is not None:
            request.update(record=str(record), step_seed=step_seed)
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return parse_reply(self._line(), steps)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def add_release_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--release`` and ``--release-python``: where the release's code is, and the Python that runs it."""
    parser.add_argument("--release", required=required,
                        help="Checkout of the IRED release's code (github yilundu/ired_code_release).")
    parser.add_argument("--release-python", required=required,
                        help="Python of an environment where the release's imports work "
                             "(torch, ema-pytorch, accelerate, einops, ...).")


def check_release(path: str | Path) -> Path:
    """``path`` as a Path, or BenchError when it does not hold the release's code."""
    release = Path(path)
    if not (release / "train.py").exists() or not (release / "diffusion_lib").is_dir():
        raise BenchError(f"--release {release}: not the IRED release's code (expected train.py and diffusion_lib/)")
    return release


def release_commit(release: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(release), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def run(args: argparse.Namespace, echo: Callable[[str], None]) -> Results:
    """Warm up and time both implementations, both objectives; returns the per-step series."""
    root, release = Path(args.root), check_release(args.release)
    results: Results = {}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "release_driver.log", "w+") as log:
        release_process = ReleaseProcess(args.release_python, release, args.threads, args.seed, log)
        try:
            ired = {o: _IredSteps(root, o, args.threads, args.seed, Path(tmp) / o) for o in args.objectives}
            ready = release_process.ready
            packages = ", ".join(f"{k} {v}" for k, v in ready.get("packages", {}).items())
            echo(f"# ired: torch {torch.__version__}, {torch.get_num_threads()} threads, "
                 f"python {platform.python_version()}")
            echo(f"# release: commit {release_commit(release)}, torch {ready.get('torch')}, "
                 f"{ready['threads']} threads, "
                 f"python {ready.get('python')}, {packages}"
                 + ("; torchvision absent (empty stand-in, unused by matrix inversion)"
                    if ready.get("torchvision_stand_in") else ""))
            if ready["threads"] != torch.get_num_threads():
                raise BenchError(f"thread counts differ: ired {torch.get_num_threads()}, release {ready['threads']}")
            for objective in args.objectives:
                steppers: dict[str, Callable[[int], dict[str, list[float]]]] = {
                    "ired": ired[objective].run,
                    "release": partial(release_process.run, objective),
                }
                for name in IMPLEMENTATIONS:
                    steppers[name](args.warmup)
                for name, size in schedule(args.steps, args.block):
                    load = read_loadavg()
                    if load is not None:
                        loads.append(load.one)
                    series = steppers[name](size)
                    into = results.setdefault((objective, name), {k: [] for k in SERIES})
                    for key in SERIES:
                        into[key] += series[key]
                echo(f"# {objective}: done, loadavg now {read_loadavg() or 'unavailable'}")
        finally:
            release_process.close()
    if loads:
        echo(f"# loadavg (1 min) at the start of each block: min {min(loads):.2f}, "
             f"median {statistics.median(loads):.2f}, "
             f"max {max(loads):.2f} ({len(loads)} blocks)")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_reference", description=__doc__.splitlines()[0])
    add_release_arguments(parser)
    parser.add_argument("--root", default=".", help="Repository root (holds config/base.yaml and config/scales/).")
    parser.add_argument("--steps", type=int, default=60, help="Timed steps per implementation and objective.")
    parser.add_argument("--warmup", type=int, default=10, help="Untimed steps of each first.")
    parser.add_argument("--block", type=int, default=5, help="Steps per block; blocks alternate ired, release.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, in both processes.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--markdown", action="store_true", help="Also print the table as Markdown.")
    args = parser.parse_args(argv)

    def echo(line: str) -> None:
        print(line, flush=True)

    before = read_loadavg()
    echo(f"# benchmarks.bench_reference: reference_laptop configuration (n=5, batch 256, width 512, time_dim 128, "
         f"Adam lr 1e-4, "
         f"vector head), CPU; {args.steps} timed steps per implementation and objective after {args.warmup} warm-up "
         f"steps, blocks of {args.block} alternating ired/release; {os.cpu_count()} cores")
    echo(f"# loadavg before: {before or 'unavailable'}")
    started = time.perf_counter()
    try:
        results = run(args, echo)
    except IredError as exc:
        print(f"benchmarks.bench_reference: {exc}", file=sys.stderr)
        return 2
    for line in format_table(results):
        echo(line)
    echo(f"# loadavg after: {read_loadavg() or 'unavailable'}; whole command {time.perf_counter() - started:.0f} s")
    if args.markdown:
        echo("")
        for line in format_markdown(results):
            echo(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
