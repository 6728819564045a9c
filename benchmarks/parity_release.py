"""The IRED release's own training over the parity window, on this machine: ``python -m benchmarks.parity_release``.

``python -m benchmarks.parity_release --release PATH --release-python PY`` trains the release's own ``Trainer1D``
(github yilundu/ired_code_release checked out at PATH, run in its own Python environment by
``bench_release_driver.py``, which contains none of its code) at the reference's laptop configuration (n = 5, batch
256, Adam 1e-4, 2,000 steps; ``denoise`` and ``contrastive`` = softplus + 2-step mined negatives, weight 0.5), one
fresh driver process per seed, and writes ``release_window.csv`` in ``--out`` (default docs/results/parity/): one
row per (objective, seed) with the means over steps 1751-2000 of the release's per-step

- ``train_denoise_mse``: the denoising loss its ``p_losses`` returns (``loss_denoise`` in its progress bar);
- ``loss_contrastive``: its ``loss_energy``, softplus(E_pos - E_neg) averaged over the batch;
- ``margin``: the batch mean of E_neg - E_pos of the energies that loss is computed from.

The release logs only the two losses. Its mean margin is measured here, not inferred from the loss: since
softplus is convex, a mean loss above log 2 does not imply a negative mean margin.

``python -m benchmarks.parity`` reads the file when it exists and compares ired's runs with it (same machine, same
window, Welch's t over seeds) beside the fixed ranges of the reference's numbers (reference_numbers.yaml). The
release draws its problems and initialisation from torch's global generator, seeded here per seed; numbers by seed
are reproducible on one machine as far as the release's own code is.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_reference import (
    BenchError,
    ReleaseProcess,
    add_release_arguments,
    check_release,
)
from benchmarks.parity import RELEASE_FILE, WINDOW

OBJECTIVES = ("denoise", "contrastive")
QUANTITIES = ("train_denoise_mse", "loss_contrastive", "margin")
DRIVER_KEYS = {"train_denoise_mse": "loss_denoise", "loss_contrastive": "loss_energy", "margin": "margin"}


def window_means(per_step: dict[str, list[Any]], window: tuple[int, int] = WINDOW) -> dict[str, float | None]:
    """Mean of each quantity over steps ``window`` (1-based, inclusive) of the driver's per-step lists; None for a
    quantity the objective does not have."""
    out: dict[str, float | None] = {}
    for quantity in QUANTITIES:
        values = per_step[DRIVER_KEYS[quantity]][window[0] - 1:window[1]]
        if len(values) != window[1] - window[0] + 1:
            raise BenchError(
                f"release driver: {len(per_step[DRIVER_KEYS[quantity]])} steps, the window needs {window[1]}"
            )
        out[quantity] = None if any(v is None for v in values) else statistics.fmean(values)
    return out


def train_release(python: str, release: Path, objective: str, seed: int, steps: int, threads: int,
                  block: int = 250) -> dict[str, list[Any]]:
    """``steps`` steps of the release's training for one objective, in a fresh driver; per-step lists."""
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "release_driver.log", "w+") as log:
        driver = ReleaseProcess(python, release, threads, seed, log)
        per_step: dict[str, list[Any]] = {key: [] for key in DRIVER_KEYS.values()}
        started = time.time()
        try:
            while len(per_step["loss_denoise"]) < steps:
                k = min(block, steps - len(per_step["loss_denoise"]))
                reply = driver.run(objective, k)
                for key in per_step:
                    if len(reply.get(key) or []) != k:
                        raise BenchError(f"release driver: no per-step {key!r} in its reply (an older driver?)")
                    per_step[key] += reply[key]
                print(f"parity_release: {objective} seed {seed}: step {len(per_step['loss_denoise'])}/{steps} "
                      f"({time.time() - started:.0f} s)", flush=True)
        finally:
            driver.close()
    return per_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parity_release", description=__doc__.splitlines()[0])
    add_release_arguments(parser)
    parser.add_argument("--out", default="docs/results/parity", help=f"Folder of {RELEASE_FILE}.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of the release (the reference's laptop configuration: 2).")
    args = parser.parse_args(argv)
    rows = []
    try:
        release = check_release(args.release)
        for objective in args.objectives:
            for seed in args.seeds:
                per_step = train_release(args.release_python, release, objective, seed, WINDOW[1], args.threads)
                means = window_means(per_step)
                rows.append({"objective": objective, "seed": seed,
                             **{q: "" if v is None else f"{v:.6g}" for q, v in means.items()}})
    except BenchError as exc:
        print(f"benchmarks.parity_release: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / RELEASE_FILE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["objective", "seed", *QUANTITIES], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"parity_release: wrote {out / RELEASE_FILE} ({len(rows)} runs of the release); "
          "`python -m benchmarks.parity --no-train` puts them beside ired's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
