"""The GPU measurement: ``python -m benchmarks.bench_gpu`` on a machine with CUDA -> docs/results/gpu/gpu.csv and gpu.md.

It measures, at the paper size (config/scales/paper.yaml: n = 20, width 512, batch 2048), on the GPU:

- the training step of both objectives (``denoise``; ``contrastive`` = softplus + 2-step mined negatives) on each
  path (``default`` = train.kernel autograd, fp32; ``fused``; ``tf32``; ``bf16``), and inference of 2,048
  problems once per ``inference.kernel`` (``fused`` sets ``compiled``): median seconds, ``*_floor_ratio``
  (ired.bench.speed's FLOP floor, measured on the same GPU) and the peak memory of each
  (``torch.cuda.max_memory_allocated``);
- a short paper-scale run per objective (default path): wall seconds and steps until the EMA weights' task MSE
  on the validation split (``--eval-size`` problems, evaluated every ``--eval-every`` steps) is below the
  predict-mean baseline's on the same problems, at most ``--run-steps`` steps; with its peak memory.

The paper scale's ``runtime`` is sized from these numbers (docs/PIPELINE.md). Without CUDA it stops in one line.
``--device cpu --tiny`` runs the same at a toy size on the CPU and writes the same files (to ``--out``): a dry run
of the command and its writer, no measurement.
"""  # noqa: E501 (the docstring's first line is the --help description, kept whole)

from __future__ import annotations

import argparse
import csv
import io
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ired.bench.floor import GemmTimer
from ired.bench.speed import (
    FIGURES,
    OBJECTIVES,
    PATHS,
    STEPS,
    Bench,
    load_average,
    measure,
)
from ired.core.config_io import load_config
from ired.evaluation.protocols import current_settings, run_inference
from ired.science.data import baseline_mses, make_split
from ired.training.trainer import Trainer

GPU_PATHS = {**PATHS, "tf32": ["train.kernel=autograd", "train.precision=tf32"]}
COLUMNS = ("kind", "name", "path", "seconds", "floor_ratio", "steps", "peak_memory_mib", "load", "note")


def peak_memory_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_of(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Peak MiB of one call of ``fn`` (after a warm-up call)."""
    fn()
    _reset_peak(device)
    fn()
    return peak_memory_mib(device)


def step_rows(bench: Bench, paths: list[str], repeats: int) -> list[dict[str, Any]]:
    """One row per figure and path: seconds and floor ratio (ired.bench.speed's rounds, each run between two
    samples of its floor), peak memory."""
    rows = []
    for figure in FIGURES:
        count, device = bench.counted(figure)
        timer = GemmTimer(count, device)
        for path in paths if figure != "inference_2048" else list(bench.inference_paths(paths).values()):
            fn, _ = bench.path_work(figure, path)
            peak = peak_of(fn, device)
            m = measure(fn, device, repeats, timer, warmup=0)  # peak_of's two calls warmed it up
            rows.append({"kind": "step", "name": figure, "path": path, "seconds": m.seconds, "floor_ratio": m.ratio,
                         "peak_memory_mib": peak, "load": m.load,
                         "note": f"floor {m.floor_seconds:.4g} s = {count.flops / 1e9:.4g} GFLOP at the speed of "
                                 "its matrix products in the same rounds"})
            print(f"bench_gpu: {figure} [{path}] {m.seconds:.4f} s, peak {peak} MiB", flush=True)
    return rows


def time_to_baseline(overrides: list[str], workdir: Path, max_steps: int, eval_every: int, eval_size: int,
                     name: str) -> dict[str, Any]:
    """Train from scratch (the base config, the paper's, with ``overrides``) until the EMA weights beat the
    predict-mean baseline on ``eval_size`` val problems, or ``max_steps``."""
    cfg = load_config(None, [*overrides, f"train.steps={max_steps}"])
    trainer = Trainer(cfg, workdir / name, echo=False)
    problems = make_split("val", cfg.data.n, eval_size, cfg.data.eval_seed)
    baseline = baseline_mses(problems.A_inv, cfg.data.n, cfg.data.eval_seed)["predict_mean_mse"]
    settings = current_settings(cfg)
    _reset_peak(trainer.device)
    started, training = time.perf_counter(), 0.0
    mse, beaten = None, None
    while trainer.step < max_steps:
        tick = time.perf_counter()
        trainer.train_step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        training += time.perf_counter() - tick
        if trainer.step % eval_every == 0 or trainer.step == max_steps:
            mse = run_inference(trainer.ema, trainer.schedule, problems, settings, cfg.inference.seed,
                                cfg.inference.batch_size, trainer.device)["task_mse"]
            if mse is not None and mse < baseline:
                beaten = trainer.step
                break
    wall = time.perf_counter() - started
    trainer.files.close()
    note = (f"EMA val task MSE {mse:.4g} < predict-mean {baseline:.4g} at step {beaten}" if beaten else
            f"not beaten in {max_steps} steps: EMA val task MSE {mse} vs predict-mean {baseline:.4g}")
    return {"kind": "run", "name": f"{name}_to_predict_mean", "path": "default", "seconds": wall,
            "steps": beaten if beaten else max_steps, "peak_memory_mib": peak_memory_mib(trainer.device),
            "load": load_average(), "note": f"{note}; training alone {training:.1f} s"}


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k])
                         for k in COLUMNS})
    path.write_text(buffer.getvalue())


def _cell(value: Any, digits: str = ".4g") -> str:
    return "-" if value is None else (format(value, digits) if isinstance(value, float) else str(value))


def write_markdown(rows: list[dict[str, Any]], path: Path, command: str, device: str) -> None:
    lines = [
        "# GPU measurement",
        "",
        f"Generated by `{command}` (benchmarks.bench_gpu) on {device}, torch {torch.__version__}, "
        f"{platform.machine()}.",
        *(["**A dry run at a toy size on the CPU: these rows check the command, they measure nothing.**"]
          if "--tiny" in command else []),
        "Steps: median seconds of one training step (batch 2048, n = 20, width 512) or of inference of 2,048 "
        "problems, its ratio to the FLOP floor measured on the same device (ired.bench.speed), peak memory "
        "(torch.cuda.max_memory_allocated). Runs: wall seconds of a paper-scale run from scratch until its EMA "
        "weights beat the predict-mean baseline (evaluations included).",
        "",
        "| kind | name | path | seconds | floor ratio | steps | peak memory (MiB) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['name']} | {r['path']} | {_cell(r.get('seconds'))} | "
                     f"{_cell(r.get('floor_ratio'), '.2f')} | {_cell(r.get('steps'))} | "
                     f"{_cell(r.get('peak_memory_mib'), '.0f')} | {r.get('note', '')} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="a toy size (with --device cpu: a dry run of the writer)")
    parser.add_argument("--out", default="docs/results/gpu", help="where gpu.csv and gpu.md are written")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--paths", default="default,fused,tf32,bf16", help=f"of: {', '.join(GPU_PATHS)}")
    parser.add_argument("--run-steps", type=int, default=5000, help="most steps of each run to the baseline")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-size", type=int, default=1024)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks.bench_gpu: no CUDA device here (torch.cuda.is_available() is False); "
              "run it on a GPU machine, or `--device cpu --tiny` for a dry run", file=sys.stderr)
        return 2
    if args.device == "cpu" and not args.tiny:
        print("benchmarks.bench_gpu: --device cpu only with --tiny (a dry run); CPU speed: python -m ired.bench.speed",
              file=sys.stderr)
        return 2
    paths = [p for p in args.paths.split(",") if p]
    if args.device == "cpu":
        paths = [p for p in paths if p != "tf32"]
    unknown = [p for p in paths if p not in GPU_PATHS]
    if unknown:
        parser.error(f"--paths: {', '.join(unknown)} not allowed (allowed: {', '.join(GPU_PATHS)})")
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu (dry run)"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args.device, args.tiny, Path(tmp), GPU_PATHS)
        rows += step_rows(bench, paths, args.repeats)
        for figure in STEPS:
            objective = figure.removeprefix("train_step_")
            row = time_to_baseline([*bench.size, f"device={args.device}", *OBJECTIVES[figure]], Path(tmp),
                                   args.run_steps, args.eval_every, args.eval_size, objective)
            rows.append(row)
            print(f"bench_gpu: {row['name']} {row['seconds']:.1f} s, {row['steps']} steps ({row['note']})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.bench_gpu" + (f" --device {args.device}" if args.device != "cuda" else "") + (
        " --tiny" if args.tiny else "")
    write_csv(rows, out / "gpu.csv")
    write_markdown(rows, out / "gpu.md", command, device)
    print(f"bench_gpu: wrote {out / 'gpu.csv'} and {out / 'gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
