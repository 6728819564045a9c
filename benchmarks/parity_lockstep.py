"""Step-by-step parity with the IRED release: ``python -m benchmarks.parity_lockstep``.

``python -m benchmarks.parity_lockstep --release PATH --release-python PY`` runs the release's own ``Trainer1D`` (the
checkout of github yilundu/ired_code_release at PATH, in its own Python, through ``bench_release_driver.py``) for
``--steps`` steps of each objective at the reference's laptop configuration, recording its initial weights and
every batch it trains on, and reseeding torch's generator to ``step_seed + i`` right after step i's batch is drawn.
It then replays the same steps with ired's :class:`ired.training.trainer.Trainer` at the ``reference_laptop`` scale: the
same initial weights (the release's EBM mapped onto :class:`ired.science.models.EnergyMLP`), the same batches, and the
same seed before each step, so that both draw the same levels t, the same noise and (for ``contrastive``) the same
negatives' noise. If the two implement the same maths, their per-step losses and their weights agree to float32
rounding; any difference in the model, the loss, the negatives, the clipping, Adam or the EMA shows up as a
difference of order 1e-3 or more within a few steps.

Each objective is also replayed with one named deviation (``train.ema_rule=fixed`` for ``denoise``,
``negatives.mining=fixed`` for ``contrastive``), to show what a difference looks like in the same table.

``--set KEY=VALUE`` (repeatable) replays with those run-config keys changed, e.g. ``--set train.kernel=fused``: is
the option's training step the release's to float32 rounding? ``--record-ired`` records ired's own default training
the same way in place of the release's (no release needed): then the table compares the ``--set`` options against
ired's default step, which the release comparison has tied to the release.

Writes in ``--out`` (default docs/results/parity/):

- ``lockstep.md``: per objective and replay, the largest relative difference of the per-step losses, of the final
  raw weights and of the final EMA weights, and the verdict against TOLERANCE;
- ``lockstep.csv``: every step, both implementations' losses and margins side by side;
- ``lockstep.png``: the largest relative difference of the denoising loss up to each step, one panel per
  objective, with each replay's final weight and EMA differences in the legend.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import platform
import sys
import tempfile
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_reference import (
    BenchError,
    ReleaseProcess,
    add_release_arguments,
    check_release,
    release_commit,
)
from benchmarks.parity import run_config
from benchmarks.parity_release import OBJECTIVES
from ired.core.config_io import deep_merge, parse_set
from ired.core.run_config import RunConfig
from ired.science.data import Problems

STEP_SEED = 10_000  # torch's generator is set to STEP_SEED + i before step i, on both sides
TOLERANCE = 1e-4  # largest relative difference still called "same" (float32 rounding gives ~1e-7 .. 1e-5)
DEVIATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "denoise": ("train.ema_rule=fixed", {"train": {"ema_rule": "fixed"}}),
    "contrastive": ("negatives.mining=fixed", {"negatives": {"mining": "fixed"}}),
}
LOSSES = {"loss_denoise": "train_denoise_mse", "loss_energy": "loss_contrastive", "margin": "margin"}
"""The release's per-step quantity -> ired's training column of the same quantity."""


RELEASE_NAMES = {"hidden.0": "fc2", "hidden.1": "fc3", "time_mlp.0": "time_mlp.1", "time_mlp.2": "time_mlp.3",
                 "film.0": "t_map_fc2", "film.1": "t_map_fc3", "head": "fc4"}
"""ired's EnergyMLP module -> the release's EBM module of the same weights (besides fc1 = [fc_x | fc_y])."""


def release_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ired's weights under the release's EBM names (the inverse of :func:`ired_state_from_release`)."""
    out = {"fc1.weight": torch.cat([state["fc_x.weight"], state["fc_y.weight"]], dim=1),
           "fc1.bias": state["fc_y.bias"].clone()}
    for ired, release in RELEASE_NAMES.items():
        for kind in ("weight", "bias"):
            out[f"{release}.{kind}"] = state[f"{ired}.{kind}"].clone()
    return out


def ired_state_from_release(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The release's ``models.EBM`` weights as :class:`ired.science.models.EnergyMLP` weights (vector head, depth 3).

    fc1 on concat[x, y] -> fc_x (its x columns, no bias) and fc_y (its y columns and the bias); fc2, fc3 -> hidden;
    time_mlp.1, time_mlp.3 (after the sinusoidal embedding) -> time_mlp.0, time_mlp.2; t_map_fc2, t_map_fc3 -> film;
    fc4 -> head.
    """
    fc1 = state["fc1.weight"]
    d = fc1.shape[1] // 2
    out = {"fc_x.weight": fc1[:, :d], "fc_y.weight": fc1[:, d:], "fc_y.bias": state["fc1.bias"]}
    for ired, release in RELEASE_NAMES.items():
        for kind in ("weight", "bias"):
            out[f"{ired}.{kind}"] = state[f"{release}.{kind}"]
    return {name: value.clone() for name, value in out.items()}


class RecordedStream:
    """Stands for the trainer's problem stream: hands out the release's recorded batches in order."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.inputs, self.targets, self.index = inputs, targets, 0

    def next(self, batch: int, helper: Executor | None = None) -> Problems:
        A, A_inv = self.inputs[self.index], self.targets[self.index]
        if A.shape[0] != batch:
            raise BenchError(f"recorded batch {self.index} holds {A.shape[0]} problems, the trainer asks {batch}")
        self.index += 1
        return Problems(A, A_inv)

    def state_dict(self) -> dict[str, Any]:
        return {"index": self.index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.index = int(state["index"])


@dataclass
class Replay:
    """ired's side of one replay: per-step training columns and the final raw and EMA weights."""

    per_step: dict[str, list[float | None]]
    final: dict[str, torch.Tensor]
    final_ema: dict[str, torch.Tensor]


def replay(cfg: RunConfig, record: dict[str, Any], workdir: Path) -> Replay:
    """Train ``cfg`` from the recorded initial weights on the recorded batches, seeding each step like the release."""
    from ired.training.trainer import Trainer

    trainer = Trainer(cfg, workdir, echo=False)
    initial = ired_state_from_release(record["initial"])
    trainer.model.load_state_dict(initial)
    trainer.ema.load_state_dict(initial)
    trainer.stream = RecordedStream(record["inputs"], record["targets"])  # type: ignore[assignment]
    steps = record["inputs"].shape[0]
    per_step: dict[str, list[float | None]] = {column: [] for column in LOSSES.values()}
    for i in range(steps):
        torch.manual_seed(int(record["step_seed"]) + i)
        stats = trainer.train_step()
        for column in per_step:
            per_step[column].append(stats.get(column))
    trainer.files.close()
    return Replay(per_step, trainer.model.state_dict(), trainer.ema.state_dict())


def record_ired(cfg: RunConfig, steps: int, step_seed: int, folder: Path) -> dict[str, Any]:
    """ired's own training of ``cfg`` recorded the way bench_release_driver records the release's: the initial and
    final weights under the release's names, every batch, and torch reseeded to step_seed + i after batch i."""
    from ired.training.trainer import Trainer

    trainer = Trainer(cfg, folder, echo=False)
    initial = release_state(trainer.model.state_dict())
    source, inputs, targets = trainer.stream, [], []
    losses: dict[str, list[float | None]] = {release_key: [] for release_key in LOSSES}

    class Reseeding:
        def next(self, batch: int, helper: Executor | None = None) -> Problems:
            problems = source.next(batch)
            inputs.append(problems.A)
            targets.append(problems.A_inv)
            torch.manual_seed(step_seed + len(inputs) - 1)
            return problems

    trainer.stream = Reseeding()  # type: ignore[assignment]
    # the stand-in reseeds torch between the problems and their noise, as the release draws them: the noise must
    # then be drawn after it, in this thread, not meanwhile in the batch helper's
    trainer.batch_helper = None
    for _ in range(steps):
        stats = trainer.train_step()
        for release_key, column in LOSSES.items():
            losses[release_key].append(stats.get(column))
    trainer.files.close()
    return {"step_seed": step_seed, "initial": initial, "final": release_state(trainer.model.state_dict()),
            "final_ema": release_state(trainer.ema.state_dict()), "inputs": torch.stack(inputs),
            "targets": torch.stack(targets), **losses}


def relative_difference(a: float | None, b: float | None) -> float | None:
    """|a - b| / |b|; None when either is missing."""
    if a is None or b is None:
        return None
    return abs(a - b) / abs(b) if b != 0 else (0.0 if a == 0 else math.inf)


def weights_difference(ired: dict[str, torch.Tensor], release: dict[str, torch.Tensor]) -> float:
    """Largest ||ired - release|| / ||release|| over the tensors of the release's weights mapped to ired's names."""
    mapped = ired_state_from_release(release)
    return max(float((ired[name] - value).norm() / value.norm().clamp_min(1e-30)) for name, value in mapped.items())


def compare(
    objective: str, variant: str, record: dict[str, Any], result: Replay
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary row of one replay and its per-step rows."""
    steps: list[dict[str, Any]] = []
    largest: dict[str, float] = {}
    for i in range(record["inputs"].shape[0]):
        row: dict[str, Any] = {"objective": objective, "replay": variant, "step": i + 1}
        for release_key, column in LOSSES.items():
            ours, theirs = result.per_step[column][i], record[release_key][i]
            row[f"release_{column}"], row[f"ired_{column}"] = theirs, ours
            if release_key == "margin":  # E_neg - E_pos of energies ~90 is near 0: a relative difference says
                continue  # nothing; the energies agree when the losses and weights do (both sides are in the csv)
            diff = relative_difference(ours, theirs)
            if diff is not None:
                largest[column] = max(largest.get(column, 0.0), diff)
        steps.append(row)
    summary: dict[str, Any] = {
        "objective": objective, "replay": variant, "steps": len(steps),
        "train_denoise_mse": largest.get("train_denoise_mse"), "loss_contrastive": largest.get("loss_contrastive"),
        "weights": weights_difference(result.final, record["final"]),
        "ema_weights": weights_difference(result.final_ema, record["final_ema"]),
    }
    measured: list[float] = [
        summary[k]
        for k in ("train_denoise_mse", "loss_contrastive", "weights", "ema_weights")
        if summary[k] is not None
    ]
    summary["verdict"] = "same" if max(measured) <= TOLERANCE else "differs"
    return summary, steps


def record_release(python: str, release: Path, objective: str, steps: int, threads: int, seed: int,
                   path: Path, log_path: Path) -> dict[str, Any]:
    """The release's recorded run of ``steps`` steps (bench_release_driver), loaded from ``path``."""
    with open(log_path, "w+") as log:
        driver = ReleaseProcess(python, release, threads, seed, log)
        try:
            driver.run(objective, steps, record=path, step_seed=STEP_SEED)
        finally:
            driver.close()
    return torch.load(path, weights_only=True)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def markdown(summaries: list[dict[str, Any]], command: str, release_info: str, recorded_ired: bool = False) -> str:
    if recorded_ired:
        title = "# Step-by-step replay of ired's own recorded training"
        recorded = ("ired's own default training (`--record-ired`: no release checkout here), recorded the way the "
                    "release's is,")
        weights, side = "the recorded weights (ired's, in the release's names)", "recorded"
        shows = ("the replayed options' training step (model, denoising loss, contrastive loss, negatives, clipping, "
                 "Adam, EMA) is ired's default step to float rounding; docs/results/parity/lockstep.md ties the "
                 "default step to the release's.")
    else:
        title = "# Step-by-step parity with the IRED release"
        recorded = f"The release's own `Trainer1D` loop ({release_info})"
        weights, side = "the same weights (the release's EBM mapped onto `EnergyMLP`)", "release"
        shows = ("ired's training step (model, denoising loss, contrastive loss, negatives, clipping, Adam, EMA) is "
                 "the release's to float rounding. What it cannot show: that the two draw their data and random "
                 "numbers from the same streams when run on their own (they do not: a seed gives different numbers "
                 "in each), which is why parity.md compares seed means.")
    lines = [
        title,
        "",
        f"Generated by `{command}` (benchmarks.parity_lockstep). {recorded} "
        "trains each objective at the reference's laptop configuration (n = 5, batch 256, width 512, Adam 1e-4, "
        "grad clip 1, EMA by ema-pytorch); its initial weights and every batch are recorded, and torch's generator "
        f"is set to {STEP_SEED} + i right after step i's batch is drawn. ired's `Trainer.train_step` then replays "
        f"the same steps at the `reference_laptop` scale from {weights}, on the same batches, with the same seed "
        "before each step: both draw the same levels t, the same noise and the same noise for the contrastive "
        "positives and mined negatives.",
        "",
        "Columns: the largest relative difference over all steps of the per-step denoising loss and contrastive "
        f"loss, and of the weights at the end (max over tensors of ||ired - {side}|| / ||{side}||; raw and EMA). "
        f"`same` means every one is at most {TOLERANCE:g}; float32 rounding alone gives 1e-7 to 1e-5 after a few "
        "hundred steps. The `reference` replay uses ired's defaults (and the `--set` options its name lists); the "
        "other replay changes one named option to show what a real difference looks like.",
        "",
        "| objective | replay | steps | denoising loss | contrastive loss | weights | EMA weights | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(f"| {s['objective']} | {s['replay']} | {s['steps']} | {_fmt(s['train_denoise_mse'])} | "
                     f"{_fmt(s['loss_contrastive'])} | {_fmt(s['weights'])} | {_fmt(s['ema_weights'])} | "
                     f"{s['verdict']} |")
    lines += [
        "",
        "Every step of both sides is in lockstep.csv; lockstep.png plots the largest relative difference of the "
        f"denoising loss up to each step. What this shows: with the same weights, data and random draws, {shows}",
        "",
        f"Machine: {platform.machine()}, torch {torch.__version__}.",
        "",
    ]
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()}
                     for r in rows)
    return buffer.getvalue()


def figure(steps: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> Any:
    """Largest relative difference of the denoising loss up to each step, one panel per objective, one line per
    replay; the legend gives each replay's final weight and EMA differences (the EMA never feeds back into
    training, so an EMA deviation shows there only)."""
    from matplotlib.figure import Figure

    objectives = [o for o in OBJECTIVES if any(s["objective"] == o for s in summaries)]
    fig = Figure(figsize=(5.0 * len(objectives), 3.6), layout="constrained")
    axes = fig.subplots(1, len(objectives), squeeze=False)[0]
    for ax, objective in zip(axes, objectives, strict=True):
        for s in (s for s in summaries if s["objective"] == objective):
            rows = [r for r in steps if r["objective"] == objective and r["replay"] == s["replay"]]
            largest, curve = 0.0, []
            for r in rows:
                difference = relative_difference(r["ired_train_denoise_mse"], r["release_train_denoise_mse"])
                largest = max(largest, difference or 0.0)
                curve.append(max(largest, 1e-9))
            label = f"{s['replay']}: final weights {_fmt(s['weights'])}, EMA {_fmt(s['ema_weights'])}"
            ax.plot([r["step"] for r in rows], curve, label=label, linewidth=1.2,
                    linestyle="-" if s["replay"].startswith("reference") else "--")
        ax.axhline(TOLERANCE, color="grey", linestyle=":", linewidth=0.8, label=f"tolerance {TOLERANCE:g}")
        ax.set_yscale("log")
        ax.set_title(f"{objective}: ired replaying the release's steps")
        ax.set_xlabel("step")
        ax.set_ylabel("largest |ired - release| / release so far\n(denoising loss)")
        ax.legend(fontsize=7)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parity_lockstep", description=__doc__.splitlines()[0])
    add_release_arguments(parser, required=False)
    parser.add_argument("--root", default=".", help="Repository root (holds config/base.yaml and config/scales/).")
    parser.add_argument("--out", default="docs/results/parity", help="Where lockstep.md/.csv/.png are written.")
    parser.add_argument("--steps", type=int, default=300, help="Steps per objective (the EMA's copy phase is 100).")
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the release's side.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the release's initial weights and data.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Replay with this run-config key changed (repeatable), e.g. train.kernel=fused.")
    parser.add_argument("--record-ired", action="store_true",
                        help="Record ired's own default training in place of the release's (no release needed).")
    args = parser.parse_args(argv)
    if not args.record_ired and not (args.release and args.release_python):
        parser.error("--release and --release-python are required (or --record-ired)")
    from ired.reporting.figure_canvas import save_png

    summaries: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    started = time.time()
    try:
        release = None if args.record_ired else check_release(args.release)
        replayed: dict[str, Any] = {}
        for assignment in args.set:
            replayed = deep_merge(replayed, parse_set(assignment))
        label = " ".join(args.set)
        with tempfile.TemporaryDirectory() as tmp:
            for objective in args.objectives:
                if release is None:
                    cfg = run_config(Path(args.root), objective, args.seed, {"train": {"steps": args.steps}})
                    record = record_ired(cfg, args.steps, STEP_SEED, Path(tmp) / f"{objective}-recorded")
                else:
                    record = record_release(args.release_python, release, objective, args.steps, args.threads,
                                            args.seed, Path(tmp) / f"{objective}.pt", Path(tmp) / f"{objective}.log")
                who = "ired" if release is None else "the release"
                print(f"parity_lockstep: recorded {args.steps} steps of {who}'s "
                      f"{objective} ({time.time() - started:.0f} s)", flush=True)
                deviation, changes = DEVIATIONS[objective]
                for variant, overrides in (("reference", {}), (deviation, changes)):
                    overrides = deep_merge(replayed, overrides)
                    variant = f"{variant} + {label}" if label else variant
                    cfg = run_config(Path(args.root), objective, args.seed,
                                     {**overrides, "train": {**overrides.get("train", {}), "steps": args.steps}})
                    result = replay(cfg, record, Path(tmp) / f"{objective}-{variant}")
                    summary, rows = compare(objective, variant, record, result)
                    summaries.append(summary)
                    steps += rows
                    print(f"parity_lockstep: {objective} {variant}: {summary['verdict']} "
                          f"(denoising loss {_fmt(summary['train_denoise_mse'])}, weights {_fmt(summary['weights'])}, "
                          f"EMA {_fmt(summary['ema_weights'])}; {time.time() - started:.0f} s)", flush=True)
    except BenchError as exc:
        print(f"benchmarks.parity_lockstep: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.parity_lockstep " + (
        "--record-ired" if release is None else "--release <checkout> --release-python <python>")
    if args.steps != 300:
        command += f" --steps {args.steps}"
    command += "".join(f" --set {assignment}" for assignment in args.set)
    if args.out != parser.get_default("out"):
        command += f" --out {args.out}"
    info = "" if release is None else f"commit {release_commit(release)}"
    (out / "lockstep.md").write_text(markdown(summaries, command, info, recorded_ired=release is None))
    (out / "lockstep.csv").write_text(_csv(steps))
    save_png(figure(steps, summaries), out / "lockstep.png")
    print(f"parity_lockstep: wrote {out / 'lockstep.md'}, lockstep.csv, lockstep.png "
          f"({time.time() - started:.0f} s)")
    return 0 if all(s["verdict"] == "same" for s in summaries if s["replay"].startswith("reference")) else 1


if __name__ == "__main__":
    sys.exit(main())
