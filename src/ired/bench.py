"""Speed benchmark: ``python -m ired.bench`` prints ``name: seconds`` (median of several runs), one per line.

- ``train_step_denoise``: one optimiser step, batch 2048, n = 20, width 512, vector head, objective denoise.
- ``train_step_contrastive``: the same with softplus contrastive and mined negatives (2 steps, reference settings).
- ``inference_2048``: full annealed inference of 2048 problems, 10 levels x (1 + 5) steps.
The IRED reference costs ~0.31 s, ~0.99 s and ~9-10 s on a 2-core CPU (REFERENCE.md).

``--set KEY=VALUE`` (repeatable) changes the configuration of every timing (after the bench's own keys,
so ``--set train.batch_size=256 --set train.threads=1`` times a smaller step on one thread) and ``--train-only``
skips the inference. Each line is followed by a comment line with the process CPU time per call (user + system),
which a shared machine's load changes much less than the wall time, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from ired.config import load_config
from ired.data import make_split
from ired.inference import InferenceSettings, annealed_inference
from ired.train import Trainer


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median wall seconds, median process CPU seconds) of one call."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def _trainer(overrides: list[str], out: Path) -> Trainer:
    cfg = load_config(None, ["data.n=20", "model.width=512", "model.head=vector", "train.batch_size=2048", *overrides])
    return Trainer(cfg, out, echo=False)


def _report(name: str, timed: tuple[float, float], load_before: str) -> None:
    wall, cpu = timed
    print(f"{name}: {wall:.3f}", flush=True)
    print(f"# {name}: cpu {cpu:.3f} s; load average {load_before} -> {_load()}", flush=True)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ired.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a run config key for the training steps, after the bench's own (repeatable)")
    parser.add_argument("--train-only", action="store_true", help="time the training steps only")
    args = parser.parse_args(argv)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}"
          + (f", --set {' '.join(args.set)}" if args.set else ""), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in (
            ("train_step_denoise", ["objective.name=denoise"]),
            ("train_step_contrastive", ["objective.name=softplus", "negatives.name=mined", "negatives.steps=2"]),
        ):
            trainer = _trainer([f"device={args.device}", *overrides, *args.set], Path(tmp) / name)
            load = _load()
            _report(name, _median_time(lambda: _sync(trainer.train_step, trainer.device), args.repeats), load)
        if args.train_only:
            return
        trainer = _trainer([f"device={args.device}", *args.set], Path(tmp) / "inference")
        problems = make_split("val", 20, 2048, 0).to(trainer.device)
        settings = InferenceSettings(steps_per_level=5)

        def infer() -> None:
            annealed_inference(trainer.ema, trainer.schedule, problems.A, settings, torch.Generator().manual_seed(0))

        load = _load()
        _report("inference_2048", _median_time(lambda: _sync(infer, trainer.device), max(2, args.repeats // 2)), load)


def _sync(fn: Callable[[], object], device: torch.device) -> None:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
