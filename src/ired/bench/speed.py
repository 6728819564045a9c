"""Speed benchmark against the FLOP floor: ``python -m ired.bench`` prints ``name: value`` lines, each timed figure
beside its floor measured in the same run.

- ``train_step_denoise``: one optimiser step, batch 2048, n = 20, width 512, vector head, objective denoise.
- ``train_step_contrastive``: the same with softplus contrastive and mined negatives (2 steps, reference settings).
- ``inference_2048``: full annealed inference of 2048 problems, 10 levels x (1 + 5) steps.

Each is the median seconds over ``--repeats`` runs (after a warm-up), with the 1-minute load average beside it.
``<name>_floor_ratio`` = seconds / floor, the floor = the FLOPs of today's default path (counted by
FlopCounterMode over one step, every gradient included, also the last ones of mining and of each inference level,
which ired no longer computes: skipped work counts as a gain) / this machine's matmul throughput on that work's own
matrix products (each distinct shape and layout timed alone, ``ired.bench.floor``). The runs alternate with
samples of the floor (each run between two samples, its floor their mean), and the ratio is the median of the
runs' ratios: a machine whose speed drifts over seconds (a shared host: the same product's throughput moved by 2x
within 15 s on the development machine) slows a run and its floor alike. Paths: ``default``
(``train.kernel: autograd``, fp32: the reference's numbers) and ``fused`` (``train.kernel: fused``, compiled at this
size); ``--paths`` adds ``fused_eager`` (fused, ``train.compile: never``: what compiling gains, and what
a run too short to compile gets) and ``bf16`` (fused + ``train.precision: bf16``). Inference is timed once per
``inference.kernel``: ``exact`` on every path but ``fused``, which also sets ``inference.kernel: compiled``.
``--tiny`` runs the same at a toy size, to check the command.

``--set KEY=VALUE`` (repeatable) changes the configuration of every timing, after the bench's own keys (``--set
train.batch_size=256 --set train.threads=1`` times a smaller step on one thread), and ``--train-only`` skips the
inference. Each timing line is followed by a comment line with the median floor of its rounds, its median
process CPU seconds (user + system), which a shared machine's load changes much less than the wall time, and the
first and third quartiles of its rounds' ratios: how far the median could move on this host. ``--repeats`` is 9 by
default (inference: 4); on the development machine's host a median of 5 rounds moved by ~0.1 from run to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ired.bench.floor import GemmCount, GemmTimer, count_gemms, gemm_throughput
from ired.core.config_io import load_config
from ired.science.data import make_split
from ired.science.inference import InferenceSettings, annealed_inference, unused_gradients
from ired.training.trainer import Trainer

STEPS = ("train_step_denoise", "train_step_contrastive")
FIGURES = (*STEPS, "inference_2048")
OBJECTIVES = {
    "train_step_denoise": ["objective.name=denoise"],
    "train_step_contrastive": ["objective.name=softplus", "negatives.name=mined", "negatives.steps=2"],
}
PATHS = {
    "default": ["train.kernel=autograd", "train.precision=fp32"],
    "fused": ["train.kernel=fused", "train.precision=fp32", "inference.kernel=compiled"],
    "fused_eager": ["train.kernel=fused", "train.precision=fp32", "train.compile=never"],
    "bf16": ["train.kernel=fused", "train.precision=bf16"],
}
PAPER = ["data.n=20", "model.width=512", "model.head=vector", "train.batch_size=2048"]
TINY = ["data.n=4", "model.width=32", "model.time_dim=16", "model.head=vector", "train.batch_size=64",
        "train.steps=10"]


@dataclass(frozen=True)
class Measurement:
    """One figure on one path: medians over rounds that alternate a floor sample and a run of the work."""

    seconds: float
    floor_seconds: float
    ratio: float  # the median of the rounds' seconds / floor, not the ratio of the medians
    ratio_quartiles: tuple[float, float]  # the rounds' first and third quartiles of seconds / floor
    cpu_seconds: float
    load: float


@dataclass(frozen=True)
class Floor:
    """The floor of one figure: counted FLOPs (every gradient) / matmul throughput on its own products."""

    flops: float
    throughput: float  # FLOP/s
    load: float

    @property
    def seconds(self) -> float:
        return self.flops / self.throughput


def load_average() -> float:
    return os.getloadavg()[0]


def timed_call(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of ``fn``, CUDA synchronised."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - start_cpu


class Bench:
    """The three figures of one size on one device: trainers per objective and path, inference, floors."""

    def __init__(self, device: str, tiny: bool, workdir: Path, paths: dict[str, list[str]] = PATHS,
                 overrides: list[str] | None = None) -> None:
        self.size = [*(TINY if tiny else PAPER)]
        self.overrides = list(overrides or [])  # --set: after the bench's own keys
        self.paths = paths
        self.device_name = device
        self.workdir = workdir
        self.problems = 64 if tiny else 2048

    def trainer(self, figure: str, path: str) -> Trainer:
        cfg = load_config(None, [*self.size, f"device={self.device_name}", *OBJECTIVES[figure], *self.paths[path],
                                 *self.overrides])
        return Trainer(cfg, self.workdir / f"{figure}-{path}", echo=False)

    def inference(self, path: str) -> tuple[Callable[[], object], torch.device]:
        trainer = self.trainer("train_step_denoise", path)
        problems = make_split("val", trainer.cfg.data.n, self.problems, 0).to(trainer.device)
        settings = InferenceSettings(steps_per_level=5, kernel=trainer.cfg.inference.kernel)

        def infer() -> None:
            annealed_inference(trainer.ema, trainer.schedule, problems.A, settings, torch.Generator().manual_seed(0))

        return infer, trainer.device

    def counted(self, figure: str) -> tuple[GemmCount, torch.device]:
        """Today's default path counted once (every gradient)."""
        fn, device = self.path_work(figure, "default")
        with unused_gradients():
            return count_gemms(fn), device

    @staticmethod
    def floor(count: GemmCount, device: torch.device, repeats: int) -> Floor:
        """The floor of counted work, its products timed alone."""
        return Floor(count.flops, gemm_throughput(count, device, repeats), load_average())

    def inference_kernel(self, path: str) -> str:
        """The ``inference.kernel`` of ``path``."""
        return load_config(None, [*self.paths[path], *self.overrides]).inference.kernel

    def inference_paths(self, paths: list[str]) -> dict[str, str]:
        """Each ``inference.kernel`` of ``paths`` -> the first of them with it: inference is timed once per kernel,
        on that path."""
        first: dict[str, str] = {}
        for path in paths:
            first.setdefault(self.inference_kernel(path), path)
        return first

    def path_work(self, figure: str, path: str) -> tuple[Callable[[], object], torch.device]:
        """The work of ``figure`` on ``path`` (inference: its ``inference.kernel``'s)."""
        if figure == "inference_2048":
            return self.inference(path)
        trainer = self.trainer(figure, path)
        return trainer.train_step, trainer.device


def warmups(path: str) -> int:
    """Calls of a path's work before it is timed: a compiled path compiles in its first and settles in its second."""
    return 2 if path != "default" else 1


def measure(fn: Callable[[], object], device: torch.device, repeats: int, timer: GemmTimer,
            warmup: int) -> Measurement:
    """``fn`` over ``repeats`` rounds after ``warmup`` calls: one timed call between two samples of the floor
    (``timer``: the default path's products and counted FLOPs), its floor their mean."""
    for _ in range(warmup):
        fn()
    walls, cpus, floors = [], [], []
    before = timer.floor_seconds()
    for _ in range(repeats):
        wall, cpu = timed_call(fn, device)
        walls.append(wall)
        cpus.append(cpu)
        after = timer.floor_seconds()
        floors.append((before + after) / 2)  # the floor on either side of the run
        before = after
    ratios = [wall / low for wall, low in zip(walls, floors, strict=True)]
    return Measurement(statistics.median(walls), statistics.median(floors), statistics.median(ratios),
                       quartiles(ratios), statistics.median(cpus), load_average())


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles of ``values`` (one value: itself twice)."""
    if len(values) < 2:
        return values[0], values[0]
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return first, third


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ired.bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per figure (median; inference: half)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--paths", default="default,fused", help=f"comma-separated, of: {', '.join(PATHS)}")
    parser.add_argument("--tiny", action="store_true", help="a toy size: checks the command, measures nothing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a run config key of every timing, after the bench's own (repeatable)")
    parser.add_argument("--train-only", action="store_true", help="time the training steps only (no inference)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        parser.error(f"--paths: {', '.join(unknown)} not allowed (allowed: {', '.join(PATHS)})")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"repeats {args.repeats}{', TINY size' if args.tiny else ''}"
          + (f", --set {' '.join(args.set)}" if args.set else ""), flush=True)
    figures = STEPS if args.train_only else FIGURES
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.device, args.tiny, Path(tmp), overrides=args.set)
        timers = {}
        for figure in figures:
            count, device = bench.counted(figure)
            timers[figure] = GemmTimer(count, device)
            floor = bench.floor(count, device, args.repeats)
            print(f"{figure}_gflop: {floor.flops / 1e9:.2f}  (counted, default path, every gradient)", flush=True)
            print(f"{figure}_matmul_gflops: {floor.throughput / 1e9:.1f}  (its own products; load {floor.load:.2f})",
                  flush=True)
            print(f"{figure}_floor: {floor.seconds:.3f}", flush=True)
        timed_on = bench.inference_paths(paths)  # inference.kernel -> the path its inference is timed on
        inference: dict[str, Measurement] = {}  # by inference.kernel
        for path in paths:
            print(f"# path {path}: {' '.join(PATHS[path])}", flush=True)
            kernel = bench.inference_kernel(path)
            for figure in figures:
                if figure == "inference_2048" and timed_on[kernel] != path:
                    m = inference[kernel]
                    note = f"timed once per inference.kernel: {kernel}, as on {timed_on[kernel]}"
                else:
                    reps = max(2, args.repeats // 2) if figure == "inference_2048" else args.repeats
                    fn, device = bench.path_work(figure, path)
                    m = measure(fn, device, reps, timers[figure], warmups(path))
                    note = f"load {m.load:.2f}"
                    if figure == "inference_2048":
                        inference[kernel] = m
                print(f"{figure}: {m.seconds:.3f}  ({note})", flush=True)
                if not note.startswith("timed once"):
                    low, high = m.ratio_quartiles
                    print(f"# {figure}: floor {m.floor_seconds:.3f} s in the same rounds; cpu {m.cpu_seconds:.3f} s; "
                          f"floor ratio quartiles {low:.2f}-{high:.2f}", flush=True)
                print(f"{figure}_floor_ratio: {m.ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
