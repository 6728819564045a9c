"""The trainer: denoising (+ contrastive shaping) with Adam, EMA, accumulation, checkpoints and exact resume.

``train(cfg, out_dir)`` runs a whole run in ``out_dir`` (layout in docs/ARCHITECTURE.md). If ``out_dir/checkpoints``
holds a checkpoint, the run resumes from the newest one and ends with the same numbers as an uninterrupted run:
model, EMA, optimiser, RNG, data-stream and sampler states are all in the checkpoint, and metrics.jsonl is cut back
to the checkpoint's step. NaN/inf in the loss or gradients stops the run with status ``diverged``.

Read top to bottom: :class:`Trainer` builds the state, ``train_step`` is one optimiser step (a batch and its shaping:
the loss of each micro-batch is :meth:`ired.science.energy_diffusion.EnergyDiffusion.loss` under the step's
:class:`~ired.science.losses.Shaping` from the contrastive schedules), ``evaluate`` the evaluation columns (through
:mod:`ired.evaluation.protocols`), ``run`` the loop. The run folder's files and the choice of the checkpoint to resume
from are :class:`ired.training.run_folder.RunFolder`'s; fault injection is
:class:`ired.training.faults.FaultInjector`'s.
"""

from __future__ import annotations

import copy
import math
import signal
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ired.core.errors import DivergedError, SliceEnd, StorageError
from ired.core.host import keep_freed_memory
from ired.core.metrics import ALL_COLUMNS, WEIGHTS_SUFFIX
from ired.core.progress import Progress, progress
from ired.core.run_config import RunConfig
from ired.evaluation.protocols import current_settings, denoise_mse, run_inference
from ired.runs.checkpoint import prune_checkpoints, save_checkpoint
from ired.runs.checkpoint_format import step_path
from ired.runs.code_version import check_resume, record_start
from ired.runs.state import RunLock
from ired.science.data import Problems, TrainStream, make_split
from ired.science.device import resolve_device
from ired.science.diffusion import Schedule
from ired.science.ema import ema_action
from ired.science.energy_diffusion import EnergyDiffusion
from ired.science.losses import uses_temperature
from ired.science.models import EnergyMLP, count_parameters
from ired.science.schedules import ContrastiveController
from ired.training.faults import FaultInjector
from ired.training.kernel import (
    batch_helper,
    check_precision,
    make_optimizer,
    precision,
    training_kernel,
    update_ema,
)
from ired.training.run_folder import RunFolder, progress_line


@dataclass
class TrainResult:
    status: str  # "completed" | "diverged"
    step: int
    final_checkpoint: Path | None
    out_dir: Path
    resumed_from: int | None


class _Interval:
    """Running sums of per-step statistics between two log rows."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, value: float | None) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])


class Trainer:
    """One run: the energy model with its schedule and negative sampler (``diffusion``), its EMA copy, the
    optimiser, the data stream and the contrastive schedules."""

    def __init__(self, cfg: RunConfig, out_dir: Path, echo: bool = True, progress_bar: bool = False) -> None:
        self.cfg = cfg
        self.files = RunFolder(cfg, Path(out_dir), echo)
        self.progress_bar = progress_bar  # a bar on stderr when it is a terminal (ired.core.progress)
        self.faults = FaultInjector(cfg.faults, self.files.out_dir, self.files.log)
        self.device = resolve_device(cfg.device)
        keep_freed_memory()  # each step reuses the memory the last one freed (no fresh pages: ired.core.host)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        # the model, its schedule and negative sampler; grad_y E as train.kernel says
        self.diffusion = EnergyDiffusion.for_run(cfg, self.device, training_kernel(cfg.train))
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self._parameters: list[torch.Tensor] = list(self.model.parameters())
        self._ema_parameters: list[torch.Tensor] = list(self.ema.parameters())
        self.optimizer = make_optimizer(self._parameters, cfg.train)
        check_precision(cfg.train.precision, self.device)
        self.stream = TrainStream(cfg.data.n, cfg.seed + 1_000_003)
        # prepares part of each step's batch in a second thread (ired.training.kernel.batch_helper); None: this
        # thread alone, as a caller whose stream draws from torch's generator itself must ask (parity_lockstep)
        self.batch_helper = batch_helper()
        if self.batch_helper is not None:
            weakref.finalize(self, self.batch_helper.shutdown, wait=False)
        self.controller = ContrastiveController(cfg.objective, cfg.negatives)
        self.step = 0
        self.best_val = math.inf
        self.interval = _Interval()
        self.resumed_from: int | None = None
        self._last_problems: Problems | None = None  # problems of the latest step, for train_batch_task_mse
        self.stop_signal: str | None = None  # set by a stop signal (STOP_SIGNALS); the loop checkpoints and ends

    @property
    def model(self) -> EnergyMLP:
        """The raw weights (those the optimiser trains)."""
        return self.diffusion.model

    @property
    def schedule(self) -> Schedule:
        return self.diffusion.schedule

    # ------------------------------------------------------------------ state (what a checkpoint holds)
    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "stream": self.stream.state_dict(),
            "sampler": self.diffusion.sampler.state_dict(),
            "controller": self.controller.state_dict(),
            "interval": self.interval.state_dict(),
            "best_val_task_mse": self.best_val,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.stream.load_state_dict(state["stream"])
        self.diffusion.sampler.load_state_dict(state["sampler"])
        self.controller.load_state_dict(state["controller"])
        self.interval.load_state_dict(state["interval"])
        self.best_val = state["best_val_task_mse"]
        self.step = self.resumed_from = int(state["step"])

    def save(self, path: Path) -> None:
        save_checkpoint(self.state_dict(), path)

    # ------------------------------------------------------------------ one optimiser step
    def train_step(self) -> dict[str, float | None]:
        """One optimiser step: a batch (the next problems, their levels and noises) and its shaping (the
        contrastive curriculum at this step); the loss of each micro-batch, clipping, Adam, the EMA."""
        cfg = self.cfg
        size, helper = cfg.train.batch_size, self.batch_helper
        # the levels and noises (torch's generator) in the helper thread while this one draws the problems (the
        # stream's own generator): the same numbers as one after the other
        noise = helper.submit(self.diffusion.draw_noise, size, cfg.data.n**2) if helper else None
        problems = self.stream.next(size, helper).to(self.device)
        self._last_problems = problems
        batch = self.diffusion.noised(problems, noise.result() if noise else None)
        shaping = self.controller.at(self.step)  # the contrastive curriculum's settings at this step
        self.optimizer.zero_grad(set_to_none=True)
        parts: list[dict[str, float | None]] = []
        for part in batch.micro_batches(cfg.train.effective_micro_batch):
            self.faults.check_micro_batch(len(part))
            with precision(cfg.train.precision, self.device):
                out = self.diffusion.loss(part, shaping)
            # gradients for the weights only (not for the leaf y_t): one matrix product less per step
            (out.total / cfg.train.accumulation).backward(inputs=self._parameters)
            parts.append(out.stats)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip))
        stats = {k: _mean([p[k] for p in parts]) for k in parts[0]}
        stats["grad_norm"] = grad_norm
        stats["lr"] = cfg.train.lr
        stats["contrastive_weight"] = shaping.weight
        stats["temperature"] = shaping.temperature if uses_temperature(cfg.objective.name) else None
        if not math.isfinite(stats["loss_total"] or 0.0) or not math.isfinite(grad_norm):
            raise DivergedError(self.step + 1, f"loss_total={stats['loss_total']}, grad_norm={grad_norm}")
        self.optimizer.step()
        self.step += 1
        self.controller.observe(stats.get("frac_sat"))
        action = ema_action(self.step, cfg.train)
        if action == "copy":
            self.ema.load_state_dict(self.model.state_dict())
        elif action is not None:
            update_ema(self._ema_parameters, self._parameters, action, cfg.train.kernel)
        return stats

    # ------------------------------------------------------------------ evaluation columns
    def evaluate(self) -> dict[str, float | None]:
        """The evaluation columns of the contract, for EMA and raw weights."""
        cfg = self.cfg
        size = cfg.train.eval_size
        row: dict[str, float | None] = {}
        splits = {key: make_split(split, cfg.data.n, cfg.data.split_size(split), cfg.data.eval_seed)
                  for key, split in (("val", "val"), ("val_harder", "val_harder"), ("train", "train_subset"))}
        if size:
            splits = {k: v.slice(0, size) for k, v in splits.items()}
        trained_on = None
        if self._last_problems is not None:
            subset = cfg.data.train_subset_size
            trained_on = self._last_problems.slice(0, min(subset, size or subset))
        settings = current_settings(cfg)
        chunk = cfg.inference.batch_size
        for weights, model in (("ema", self.ema), ("raw", self.model)):
            suffix = WEIGHTS_SUFFIX[weights]
            for key, problems in splits.items():
                result = run_inference(model, self.schedule, problems, settings, cfg.inference.seed, chunk, self.device)
                row[f"{key}_task_mse{suffix}"] = result["task_mse"]
            if trained_on is not None:
                result = run_inference(
                    model, self.schedule, trained_on, settings, cfg.inference.seed, chunk, self.device
                )
                row[f"train_batch_task_mse{suffix}"] = result["task_mse"]
            row[f"val_denoise_mse{suffix}"] = denoise_mse(model, self.schedule, splits["val"], chunk, self.device)
        return row

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        """Train to the end under the run folder's lock (a second trainer gets RunFolderBusy)."""
        with RunLock(self.files.out_dir), self._stop_on_signals():
            try:
                return self._run()
            except SliceEnd as exc:
                self.files.stopped("interrupted", self.step, f"{exc} ({SLICE_CAUSE[exc.signal]})")
                raise
            except StorageError as exc:
                self.files.stopped("failed", self.step,
                                   f"{exc}; rerun the same command to resume from the last checkpoint")
                raise
            except KeyboardInterrupt:
                self.files.stopped("interrupted", self.step, "stopped by an interrupt (Ctrl-C)")
                raise
            finally:
                self.files.close()

    def _run(self) -> TrainResult:
        cfg, files = self.cfg.train, self.files
        self._start()
        started = time.time()
        protected = set(cfg.milestones)
        if self.resumed_from is None:  # the initial state: a run that diverges before its first checkpoint has one
            self.save(step_path(files.ckpt_dir, 0))
        bar = (progress(cfg.steps, self.cfg.name, initial=self.step, unit="step") if self.progress_bar
               else Progress())
        files.say = bar.write
        try:
            while self.step < cfg.steps:
                tick = time.perf_counter()
                stats = self.train_step()
                bar.update(1)
                stats["sec_per_step"] = time.perf_counter() - tick
                for key, value in stats.items():
                    self.interval.add(key, value)
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    self._log_row(evaluate=self.step % cfg.eval_every == 0 or last, started=started)
                if self.step % cfg.checkpoint_every == 0 or self.step in protected or last:
                    self.save(step_path(files.ckpt_dir, self.step))
                    prune_checkpoints(files.ckpt_dir, cfg.keep_checkpoints, protected | {cfg.steps}, self.step)
                self.faults.after_step(self.step)
                if self.stop_signal is not None and not last:
                    self._end_slice(protected)
        except DivergedError as exc:
            files.log(f"DIVERGED at step {exc.step}: {exc}")
            files.write_status("diverged", self.step, diverged_at=exc.step, detail=str(exc))
            raise
        finally:
            bar.close()
            files.say = Progress().write
        final = files.paths.final
        self.save(final)
        files.write_status("completed", self.step, finished=time.time())
        files.log(f"run {self.cfg.name}: completed {self.step} steps; final checkpoint {final}")
        return TrainResult("completed", self.step, final, files.out_dir, self.resumed_from)

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """While training: a stop signal (:data:`STOP_SIGNALS`) ends the current step, then the run checkpoints and
        stops (:class:`SliceEnd`). Only in the main thread (a trainer in a test's thread keeps the defaults)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request(signum: int, frame: Any) -> None:
            self.stop_signal = signal.Signals(signum).name

        previous = {sig: signal.signal(sig, request) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _end_slice(self, protected: set[int]) -> None:
        """Checkpoint the current step (unless the loop just did) and stop: the next attempt resumes here."""
        path = step_path(self.files.ckpt_dir, self.step)
        if not path.exists():
            self.save(path)
            prune_checkpoints(self.files.ckpt_dir, self.cfg.train.keep_checkpoints, protected | {self.cfg.train.steps},
                              self.step)
        raise SliceEnd(self.stop_signal or "a signal", self.step)

    def _start(self) -> None:
        """Fault drills, then resume from the newest intact checkpoint (or start afresh) and say so."""
        self.faults.at_start()
        latest, state, previous = self.files.start(self.device)
        if state is not None:
            changed = check_resume(self.files.out_dir, self.cfg.name)  # a run never mixes two versions of the code
            self.load_state_dict(state)
            if changed:
                self.files.log(changed)
        else:
            record_start(self.files.out_dir)
        self.files.describe(self.resumed_from, f"device {self.device}, {count_parameters(self.model)} parameters",
                            latest)
        self.files.start_segment(previous, self.step)
        self.files.write_status("running", self.step)

    def _log_row(self, evaluate: bool, started: float) -> None:
        means = self.interval.means()
        self.interval = _Interval()
        row: dict[str, Any] = {name: None for name in ALL_COLUMNS}
        row.update({k: v for k, v in means.items() if k in row})
        row["step"] = self.step
        if evaluate:
            row.update(self.evaluate())
            val = row["val_task_mse"]
            if val is not None and val < self.best_val:
                self.best_val = val
                self.save(self.files.paths.best)
        self.files.append_row(row)
        self.files.write_status("running", self.step)
        elapsed = time.time() - started
        done = self.step - (self.resumed_from or 0)
        eta = elapsed / max(done, 1) * (self.cfg.train.steps - self.step)
        self.files.log(progress_line(row, self.cfg.train.steps, eta, evaluate))


#: Signals that end a slice of a run: the time-limit warning the dispatcher asks Slurm for, and the SIGTERM of a
#: preemption, an `scontrol requeue` or a time limit reached. The trainer finishes its step, checkpoints, exits
#: with :data:`ired.core.exit_codes.SLICE_END`. (SIGINT stays Ctrl-C: status ``interrupted``, no extra checkpoint.)
STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)
SLICE_CAUSE = {"SIGUSR2": "the time-limit warning", "SIGTERM": "terminated: a preemption, a requeue or a time limit"}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def train(cfg: RunConfig, out_dir: str | Path, echo: bool = True, progress_bar: bool = False) -> TrainResult:
    """Train (or resume) the run ``cfg`` in ``out_dir``; raises DivergedError on NaN/inf. ``progress_bar``: a bar on
    stderr while it is a terminal (the interactive ``ired train``)."""
    trainer = Trainer(cfg, Path(out_dir), echo=echo, progress_bar=progress_bar)
    return trainer.run()
