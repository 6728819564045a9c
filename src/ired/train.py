"""The trainer: denoising (+ contrastive shaping) with Adam, EMA, accumulation, checkpoints and exact resume.

``train(cfg, out_dir)`` runs a whole run in ``out_dir`` (layout in docs/ARCHITECTURE.md). If ``out_dir/checkpoints``
holds a checkpoint, the run resumes from the newest one and ends with the same numbers as an uninterrupted run:
model, EMA, optimiser, RNG, data-stream and sampler states are all in the checkpoint, and metrics.jsonl is cut back
to the checkpoint's step. NaN/inf in the loss or gradients stops the run with status ``diverged``.

Run-folder integrity: one trainer per folder (:class:`ired.runstate.RunLock`); resume uses the newest checkpoint
that passes its checksum (damaged newer ones are reported in train.log and status.json, and renamed
``*.corrupt``); metrics.jsonl is read by :mod:`ired.jsonl` (a torn last line is dropped and said), cut back
atomically, and when rows are missing before the checkpoint's step the run resumes from an earlier checkpoint (or
step 0) so that the log is rebuilt with the same numbers; every write that fails (disk full) is a one-line
:class:`ired.errors.StorageError` naming the file, with the previous state intact; ``status.json`` carries the
wall time of every segment of a resumed run and their sum.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from ired.atomic import write_text_atomic
from ired.checkpoint import newest_intact_checkpoint, prune_checkpoints, save_checkpoint, step_path
from ired.config import RunConfig, config_differences, dump_config
from ired.data import Problems, TrainStream, make_split
from ired.device import resolve_device
from ired.diffusion import Schedule
from ired.ema import ema_action
from ired.errors import CheckpointError, DivergedError, RecordFileError, StorageError
from ired.host import node_name
from ired.jsonl import append_jsonl, load_jsonl, read_json_object, rewrite_jsonl
from ired.losses import contrastive_loss, denoise_loss, energy_scale_penalty
from ired.metrics import ALL_COLUMNS, DEFINITIONS, WEIGHTS_SUFFIX, contract_text
from ired.models import build_model, count_parameters, energy_and_grad
from ired.negatives import make_sampler
from ired.protocols import current_settings, denoise_mse, run_inference
from ired.runstate import RunLock
from ired.schedules import ContrastiveController


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
    """One run: owns the model, EMA copy, optimiser, data stream, negative sampler and the run folder."""

    def __init__(self, cfg: RunConfig, out_dir: Path, echo: bool = True) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.echo = echo
        self.device = resolve_device(cfg.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        self.schedule = Schedule(cfg.diffusion.steps, cfg.diffusion.cosine_s).to(self.device)
        self.model = build_model(cfg).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self._parameters = list(self.model.parameters())
        self.optimizer = torch.optim.Adam(
            self._parameters, lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2)
        )
        self.stream = TrainStream(cfg.data.n, cfg.seed + 1_000_003)
        self.sampler = make_sampler(cfg.negatives)
        self.controller = ContrastiveController(cfg.objective, cfg.negatives)
        self.step = 0
        self.best_val = math.inf
        self.interval = _Interval()
        self.resumed_from: int | None = None
        self._log_handle: TextIO | None = None
        self.notices: list[str] = []  # integrity problems found on start (one line each; train.log and status.json)
        self.segments: list[dict[str, Any]] = []  # wall time of every segment of this run, the current one last
        self._last_batch: Problems | None = None  # problems of the latest step, for train_batch_task_mse

    # ------------------------------------------------------------------ files
    def log(self, message: str) -> None:
        if self.echo:
            print(message, flush=True)
        path = self.out_dir / "train.log"
        try:
            if self._log_handle is None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                self._log_handle = open(path, "a", buffering=1)
            self._log_handle.write(message + "\n")
        except OSError as exc:
            raise StorageError.from_os_error(exc, path) from None

    def _write_text(self, name: str, text: str) -> None:
        try:
            write_text_atomic(self.out_dir / name, text)
        except OSError as exc:
            raise StorageError.from_os_error(exc, self.out_dir / name) from None

    def write_status(self, status: str, **extra: Any) -> None:
        now = time.time()
        if self.segments:
            current = self.segments[-1]
            current.update(step=self.step, wall_time_s=round(now - current["started"], 3), end=status)
        payload = {"status": status, "step": self.step, "steps": self.cfg.train.steps,
                   "resumed_from": self.resumed_from,
                   "started": self.segments[-1]["started"] if self.segments else now, "updated": now,
                   "wall_time_s": round(sum(s.get("wall_time_s") or 0.0 for s in self.segments), 3),
                   "segments": self.segments, **extra}
        if self.notices:
            payload["integrity"] = self.notices
        self._write_text("status.json", json.dumps(payload, indent=1))

    def _append_row(self, row: dict[str, Any]) -> None:
        append_jsonl(self.out_dir / "metrics.jsonl", row)

    def _expected_rows(self, step: int) -> list[int]:
        """The steps of the metrics rows a run has logged once it has reached ``step``."""
        every, total = self.cfg.train.log_every, self.cfg.train.steps
        expected = list(range(every, step + 1, every))
        if step == total and total % every:
            expected.append(total)
        return expected

    def _covered_rows(self, rows: list[dict[str, Any]], step: int) -> int:
        """How many rows at the start of ``rows`` are exactly the rows expected up to ``step``."""
        n = 0
        for want, row in zip(self._expected_rows(step), rows):
            if row.get("step") != want:
                break
            n += 1
        return n

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
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
            "sampler": self.sampler.state_dict(),
            "controller": self.controller.state_dict(),
            "interval": self.interval.state_dict(),
            "best_val_task_mse": self.best_val,
        }

    def _check_same_run(self, path: Path, state: dict[str, Any]) -> None:
        diffs = config_differences(state["config"], self.cfg.to_dict())
        if diffs:
            raise CheckpointError(
                f"{path} was written with a different config (keys: {', '.join(diffs)}); "
                f"use a new output folder or delete {self.ckpt_dir}"
            )

    def resume(self, path: Path, state: dict[str, Any]) -> None:
        self._check_same_run(path, state)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.stream.load_state_dict(state["stream"])
        self.sampler.load_state_dict(state["sampler"])
        self.controller.load_state_dict(state["controller"])
        self.interval.load_state_dict(state["interval"])
        self.best_val = state["best_val_task_mse"]
        self.step = self.resumed_from = int(state["step"])

    def save(self, path: Path) -> None:
        save_checkpoint(self.state_dict(), path)

    # ------------------------------------------------------------------ faults
    def _faults_fired(self) -> dict[str, Any]:
        path = self.out_dir / "faults_fired.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _fire_once(self, name: str) -> bool:
        fired = self._faults_fired()
        if name in fired:
            return False
        fired[name] = {"step": self.step, "time": time.time(), "host": socket.gethostname()}
        self._write_text("faults_fired.json", json.dumps(fired))
        return True

    def _startup_faults(self) -> None:
        node = self.cfg.faults.exit_on_node
        if node and node_name() == node:
            self.log(f"fault injection: exiting with code {self.cfg.faults.exit_code} on node {node}")
            sys.stdout.flush()
            sys.exit(self.cfg.faults.exit_code)

    def _check_oom_fault(self, micro_batch: int) -> None:
        limit = self.cfg.faults.oom_above_micro_batch
        if limit is not None and micro_batch > limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (injected by faults.oom_above_micro_batch={limit}: micro-batch {micro_batch})"
            )

    def _step_faults(self) -> None:
        if self.cfg.faults.kill_at_step == self.step and self._fire_once("kill_at_step"):
            self.log(f"fault injection: SIGKILL at step {self.step}")
            os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ maths
    def _micro_step(
        self, x: torch.Tensor, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, weight: float, accumulation: int,
        eps_contrastive: torch.Tensor | None = None,
    ) -> dict[str, float | None]:
        cfg = self.cfg
        self._check_oom_fault(x.shape[0])
        y_t = self.schedule.q_sample(y0, t, eps).requires_grad_(True)
        cond = self.model.condition(x, t)
        e_pos, pred = energy_and_grad(self.model, cond, y_t, create_graph=True)  # (B,), (B, d)
        l_denoise = denoise_loss(pred, eps).mean()
        loss = l_denoise
        stats: dict[str, float | None] = {
            "train_denoise_mse": float(l_denoise.detach()),
            "E_pos": float(e_pos.detach().mean()),
            "gradE_norm": float(pred.detach().norm(dim=-1).mean()),
            "pred_mean": float(pred.detach().mean()),
            "pred_std": float(pred.detach().std()),
            "target_mean": float(eps.mean()),
            "target_std": float(eps.std()),
        }
        if cfg.objective.name != "denoise":
            self.controller.configure_sampler(self.sampler, self.step)
            if eps_contrastive is None:  # objective.contrastive_noise=shared: reuse the denoising term's y_t
                eps_contrastive = eps
            else:  # fresh (the reference): positives y+_t and negatives from their own noise
                e_pos = self.model.energy(cond, self.schedule.q_sample(y0, t, eps_contrastive))
                stats["E_pos"] = float(e_pos.detach().mean())
            y_neg = self.sampler.sample(self.model, self.schedule, cond.detach(), y0, t, eps_contrastive)
            e_neg = self.model.energy(cond, y_neg)
            out = contrastive_loss(
                cfg.objective, e_pos, e_neg, t,
                temperature=self.controller.temperature, margin=self.controller.margin(self.step),
            )
            loss = loss + weight * out.loss
            if cfg.objective.energy_reg > 0:
                loss = loss + cfg.objective.energy_reg * energy_scale_penalty(e_pos, e_neg)
            stats.update(
                loss_contrastive=float(out.loss.detach()) if out.n_active else None,
                E_neg=float(e_neg.detach().mean()),
                margin=out.margin if out.n_active else None,
                frac_sat=out.frac_sat if out.n_active else None,
            )
        elif cfg.objective.energy_reg > 0:
            loss = loss + cfg.objective.energy_reg * energy_scale_penalty(e_pos, None)
        stats["loss_total"] = float(loss.detach())
        # gradients for the weights only (not for the leaf y_t): one matrix product less per step
        (loss / accumulation).backward(inputs=self._parameters)
        return stats

    def train_step(self) -> dict[str, float | None]:
        cfg = self.cfg
        B, mb, acc = cfg.train.batch_size, cfg.train.effective_micro_batch, cfg.train.accumulation
        problems = self.stream.next(B).to(self.device)
        self._last_batch = problems
        t = torch.randint(0, cfg.diffusion.steps, (B,)).to(self.device)
        eps = torch.randn(B, problems.A_inv.shape[1]).to(self.device)
        eps_c = None
        if cfg.objective.name != "denoise" and cfg.objective.contrastive_noise == "fresh":
            eps_c = torch.randn(B, problems.A_inv.shape[1]).to(self.device)
        weight = self.controller.weight(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        parts: list[dict[str, float | None]] = []
        for i in range(acc):
            sl = slice(i * mb, (i + 1) * mb)
            parts.append(self._micro_step(problems.A[sl], problems.A_inv[sl], t[sl], eps[sl], weight, acc,
                                          None if eps_c is None else eps_c[sl]))
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip))
        stats = {k: _mean([p[k] for p in parts]) for k in parts[0]}
        stats["grad_norm"] = grad_norm
        stats["lr"] = cfg.train.lr
        stats["contrastive_weight"] = weight
        stats["temperature"] = self.controller.temperature if cfg.objective.name == "softplus" else None
        if not math.isfinite(stats["loss_total"] or 0.0) or not math.isfinite(grad_norm):
            raise DivergedError(self.step + 1, f"loss_total={stats['loss_total']}, grad_norm={grad_norm}")
        self.optimizer.step()
        self.step += 1
        self.controller.observe(stats.get("frac_sat"))
        action = ema_action(self.step, cfg.train)
        if action == "copy":
            self.ema.load_state_dict(self.model.state_dict())
        elif action is not None:
            self._update_ema(action)
        return stats

    @torch.no_grad()
    def _update_ema(self, decay: float) -> None:
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p, 1 - decay)

    def evaluate(self) -> dict[str, float | None]:
        """The evaluation columns of the contract, for EMA and raw weights."""
        cfg = self.cfg
        size = cfg.train.eval_size
        row: dict[str, float | None] = {}
        splits = {
            "val": make_split("val", cfg.data.n, cfg.data.val_size, cfg.data.eval_seed),
            "val_harder": make_split("val_harder", cfg.data.n, cfg.data.val_harder_size, cfg.data.eval_seed),
            "train": make_split("train_subset", cfg.data.n, cfg.data.train_subset_size, cfg.data.eval_seed),
        }
        if size:
            splits = {k: v.slice(0, size) for k, v in splits.items()}
        trained_on = None
        if self._last_batch is not None:
            trained_on = self._last_batch.slice(0, min(cfg.data.train_subset_size, size or cfg.data.train_subset_size))
        settings = current_settings(cfg)
        chunk = cfg.inference.batch_size
        for weights, model in (("ema", self.ema), ("raw", self.model)):
            suffix = WEIGHTS_SUFFIX[weights]
            for key, problems in (("val", splits["val"]), ("val_harder", splits["val_harder"]), ("train", splits["train"])):
                result = run_inference(model, self.schedule, problems, settings, cfg.inference.seed, chunk, self.device)
                row[f"{key}_task_mse{suffix}"] = result["task_mse"]
            if trained_on is not None:
                result = run_inference(model, self.schedule, trained_on, settings, cfg.inference.seed, chunk, self.device)
                row[f"train_batch_task_mse{suffix}"] = result["task_mse"]
            row[f"val_denoise_mse{suffix}"] = denoise_mse(model, self.schedule, splits["val"], chunk, self.device)
        return row

    # ------------------------------------------------------------------ loop
    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.out_dir))
        except ValueError:
            return str(path)

    def _notice(self, line: str) -> None:
        self.notices.append(line)
        self.log(f"integrity: {line}")

    def _choose_resume(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The newest intact checkpoint whose metrics rows are all present, and its state; reports what it skips.

        metrics.jsonl is cut back to that checkpoint atomically (rows that were missing are recomputed: the run
        resumes from an earlier checkpoint, or step 0, and ends with the numbers of an uninterrupted run).
        """
        metrics_path = self.out_dir / "metrics.jsonl"
        metrics = load_jsonl(metrics_path)  # a corrupt line before the last: RecordFileError naming file:line
        path, state, skipped = newest_intact_checkpoint(self.ckpt_dir, map_location=self.device)
        for item in skipped:
            self._notice(f"{self._rel(item.path)}: {item.line().removeprefix('skipped ')}; "
                         f"resuming from an older checkpoint")
        if state is None:
            return None, None
        self._check_same_run(path, state)  # before anything in the folder changes
        if metrics.torn_note:
            self._notice(f"metrics.jsonl:{metrics.torn_line}: torn last line dropped (a writer was stopped mid-line)")
        step = int(state["step"])
        covered = self._covered_rows(metrics.rows, step)
        expected = self._expected_rows(step)
        if covered < len(expected):
            have = expected[covered - 1] if covered else 0
            older, older_state, more = newest_intact_checkpoint(self.ckpt_dir, map_location=self.device, max_step=have)
            for item in more:
                self._notice(f"{self._rel(item.path)}: {item.line().removeprefix('skipped ')}")
            target = int(older_state["step"]) if older_state is not None else 0
            self._notice(
                f"metrics.jsonl has its rows only up to step {have} (missing step {expected[covered]}) but "
                f"{self._rel(path)} is at step {step}; resuming from "
                + (f"{self._rel(older)} (step {target})" if older is not None else "step 0")
                + " to recompute the missing rows (same numbers as an uninterrupted run)"
            )
            path, state = older, older_state
            if state is None:
                return None, None
            step = target
        kept = metrics.lines[: len(self._expected_rows(step))]
        if len(kept) != len(metrics.lines) or metrics.torn_line is not None:
            rewrite_jsonl(metrics_path, kept)
        return path, state

    def _previous_segments(self) -> list[dict[str, Any]]:
        """Segments of the interrupted run this one continues (from status.json), [] for a run started afresh."""
        try:
            prior = read_json_object(self.out_dir / "status.json")
        except RecordFileError as exc:
            self._notice(f"{exc}; the wall time of earlier segments is not counted")
            return []
        if not prior or prior.get("status") in ("completed", "diverged"):
            return []
        segments = prior.get("segments")
        if isinstance(segments, list):
            out = [dict(s) for s in segments if isinstance(s, dict)]
        else:  # a status.json written before segments were recorded
            wall = prior.get("wall_time_s")
            if not isinstance(wall, (int, float)):
                started, updated = prior.get("started"), prior.get("updated")
                wall = updated - started if isinstance(started, (int, float)) and isinstance(updated, (int, float)) else 0.0
            out = [{"started": prior.get("started"), "step": prior.get("step"), "wall_time_s": wall}]
        if out and out[-1].get("end") in (None, "running"):
            out[-1]["end"] = "interrupted"
        return out

    def _start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._startup_faults()
        previous = self._previous_segments()
        latest, state = self._choose_resume()
        if state is not None:
            self.resume(latest, state)
        self._write_text("resolved_config.yaml", dump_config(self.cfg))
        self._write_text("metrics_contract.json", json.dumps(DEFINITIONS, indent=1))
        if self.resumed_from is None:
            rewrite_jsonl(self.out_dir / "metrics.jsonl", [])
            self.log(f"run {self.cfg.name}: resolved config (every effective default)\n" + dump_config(self.cfg))
            self.log(contract_text())
            self.log(f"device {self.device}, {count_parameters(self.model)} parameters, "
                     f"micro-batch {self.cfg.train.effective_micro_batch} x accumulation {self.cfg.train.accumulation}")
        else:
            self.log(f"run {self.cfg.name}: resumed from {latest} at step {self.resumed_from}; "
                     f"micro-batch {self.cfg.train.effective_micro_batch} x accumulation {self.cfg.train.accumulation}")
        now = time.time()
        self.segments = previous + [{"host": socket.gethostname(), "pid": os.getpid(), "started": now,
                                     "from_step": self.resumed_from or 0, "step": self.step,
                                     "wall_time_s": 0.0, "end": "running"}]
        self.write_status("running")

    def run(self) -> TrainResult:
        """Train to the end under the run folder's lock (a second trainer gets RunFolderBusy)."""
        with RunLock(self.out_dir):
            try:
                return self._run()
            except StorageError as exc:
                self._stopped("failed", f"{exc}; rerun the same command to resume from the last checkpoint")
                raise
            except KeyboardInterrupt:
                self._stopped("interrupted", "stopped by an interrupt (Ctrl-C)")
                raise
            finally:
                if self._log_handle is not None:
                    try:
                        self._log_handle.close()
                    except OSError:
                        pass
                    self._log_handle = None

    def _stopped(self, status: str, detail: str) -> None:
        """Best effort: say why the trainer stopped in train.log and status.json (the disk may still be full)."""
        if not self.segments:
            return  # stopped before it started: status.json still describes the previous state
        for action in (lambda: self.log(f"{status.upper()} at step {self.step}: {detail}"),
                       lambda: self.write_status(status, detail=detail)):
            try:
                action()
            except OSError:
                pass

    def _run(self) -> TrainResult:
        cfg = self.cfg.train
        self._start()
        started = time.time()
        protected = set(cfg.milestones)
        if self.resumed_from is None:  # the initial state: a run that diverges before its first checkpoint has one
            self.save(step_path(self.ckpt_dir, 0))
        try:
            while self.step < cfg.steps:
                tick = time.perf_counter()
                stats = self.train_step()
                stats["sec_per_step"] = time.perf_counter() - tick
                for key, value in stats.items():
                    self.interval.add(key, value)
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    self._log_row(evaluate=self.step % cfg.eval_every == 0 or last, started=started)
                if self.step % cfg.checkpoint_every == 0 or self.step in protected or last:
                    self.save(step_path(self.ckpt_dir, self.step))
                    prune_checkpoints(self.ckpt_dir, cfg.keep_checkpoints, protected | {cfg.steps}, self.step)
                self._step_faults()
        except DivergedError as exc:
            self.log(f"DIVERGED at step {exc.step}: {exc}")
            self.write_status("diverged", diverged_at=exc.step, detail=str(exc))
            raise
        final = self.out_dir / "final.pt"
        self.save(final)
        self.write_status("completed", finished=time.time())
        self.log(f"run {self.cfg.name}: completed {self.step} steps; final checkpoint {final}")
        return TrainResult("completed", self.step, final, self.out_dir, self.resumed_from)

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
                self.save(self.ckpt_dir / "best.pt")
        self._append_row(row)
        self.write_status("running")
        elapsed = time.time() - started
        done = self.step - (self.resumed_from or 0)
        eta = elapsed / max(done, 1) * (self.cfg.train.steps - self.step)
        msg = (f"step {self.step}/{self.cfg.train.steps} | loss_total {row['loss_total']:.4g} | "
               f"train_denoise_mse {row['train_denoise_mse']:.4g} | {row['sec_per_step']:.3f} s/step | "
               f"ETA {_duration(eta)}")
        if row.get("frac_sat") is not None:
            msg += f" | frac_sat {row['frac_sat']:.3f}"
        if evaluate:
            msg += f" | val_task_mse {row['val_task_mse']:.4g} (raw {row['val_task_mse_raw']:.4g})"
        self.log(msg)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def train(cfg: RunConfig, out_dir: str | Path, echo: bool = True) -> TrainResult:
    """Train (or resume) the run ``cfg`` in ``out_dir``; raises DivergedError on NaN/inf."""
    trainer = Trainer(cfg, Path(out_dir), echo=echo)
    return trainer.run()
