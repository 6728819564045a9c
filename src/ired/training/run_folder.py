"""The trainer's run folder: what it writes (train.log, status.json, metrics.jsonl, the resolved config and the
metrics contract) and which checkpoint a run resumes from. No maths: :mod:`ired.training.trainer` owns the state and
the loop.

Integrity (docs/ARCHITECTURE.md, "Integrity rules"): resume uses the newest checkpoint that passes its checksum
(damaged newer ones are reported in train.log and status.json, and renamed ``*.corrupt``); metrics.jsonl is read
by :mod:`ired.runs.jsonl` (a torn last line is dropped and said), cut back atomically, and when rows are missing before
the checkpoint's step the run resumes from an earlier checkpoint (or step 0) so that the log is rebuilt with the
same numbers; every write that fails (disk full) is a one-line :class:`ired.core.errors.StorageError` naming the file,
with the previous state intact; ``status.json`` carries the wall time of every segment of a resumed run and their
sum.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import torch

from ired.core.config_io import dump_config
from ired.core.errors import CheckpointError, RecordFileError, StorageError
from ired.core.metrics import DEFINITIONS, contract_text
from ired.core.progress import Progress
from ired.core.run_config import RunConfig
from ired.core.same_run import config_differences
from ired.runs.atomic import write_text_atomic
from ired.runs.checkpoint import newest_intact_checkpoint
from ired.runs.jsonl import append_jsonl, load_jsonl, read_json_object, rewrite_jsonl
from ired.runs.paths import RunPaths


class RunFolder:
    """The files of one run in ``out_dir``; ``echo`` also prints every train.log line (through ``say``: a progress
    bar, while one is drawn, prints it above itself)."""

    def __init__(self, cfg: RunConfig, out_dir: Path, echo: bool = True) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.paths = RunPaths(self.out_dir)
        self.ckpt_dir = self.paths.checkpoints
        self.echo = echo
        self.say: Callable[[str], None] = Progress().write
        self.resumed_from: int | None = None
        self.notices: list[str] = []  # integrity problems found on start (one line each; train.log and status.json)
        self.segments: list[dict[str, Any]] = []  # wall time of every segment of this run, the current one last
        self._log_handle: TextIO | None = None

    # ------------------------------------------------------------------ writing
    def log(self, message: str) -> None:
        if self.echo:
            self.say(message)
        path = self.paths.train_log
        try:
            if self._log_handle is None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                self._log_handle = open(path, "a", buffering=1)
            self._log_handle.write(message + "\n")
        except OSError as exc:
            raise StorageError.from_os_error(exc, path) from None

    def close(self) -> None:
        if self._log_handle is not None:
            try:
                self._log_handle.close()
            except OSError:
                pass
            self._log_handle = None

    def write_text(self, path: Path, text: str) -> None:
        """Write one file of the run folder by the one atomic writer (a :class:`StorageError` names it)."""
        write_text_atomic(path, text)

    def write_status(self, status: str, step: int, **extra: Any) -> None:
        now = time.time()
        if self.segments:
            current = self.segments[-1]
            current.update(step=step, wall_time_s=round(now - current["started"], 3), end=status)
        payload = {"status": status, "step": step, "steps": self.cfg.train.steps,
                   "resumed_from": self.resumed_from,
                   "started": self.segments[-1]["started"] if self.segments else now, "updated": now,
                   "wall_time_s": round(sum(s.get("wall_time_s") or 0.0 for s in self.segments), 3),
                   "segments": self.segments, **extra}
        if self.notices:
            payload["integrity"] = self.notices
        self.write_text(self.paths.status, json.dumps(payload, indent=1))

    def append_row(self, row: dict[str, Any]) -> None:
        append_jsonl(self.paths.metrics, row)

    def stopped(self, status: str, step: int, detail: str) -> None:
        """Best effort: say why the trainer stopped in train.log and status.json (the disk may still be full)."""
        if not self.segments:
            return  # stopped before it started: status.json still describes the previous state
        for action in (lambda: self.log(f"{status.upper()} at step {step}: {detail}"),
                       lambda: self.write_status(status, step, detail=detail)):
            try:
                action()
            except OSError:
                pass

    # ------------------------------------------------------------------ starting
    def start(self, device: torch.device) -> tuple[Path | None, dict[str, Any] | None, list[dict[str, Any]]]:
        """Create the folder; the checkpoint to resume from and its state (None, None: from step 0), and the
        segments of the interrupted run this one continues."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        previous = self._previous_segments()
        latest, state = self._choose_resume(device)
        return latest, state, previous

    def describe(self, resumed_from: int | None, model_line: str, latest: Path | None) -> None:
        """Write the resolved config and the contract; a fresh run empties metrics.jsonl and logs both."""
        self.resumed_from = resumed_from
        self.write_text(self.paths.resolved_config, dump_config(self.cfg))
        self.write_text(self.paths.metrics_contract, json.dumps(DEFINITIONS, indent=1))
        batching = (f"micro-batch {self.cfg.train.effective_micro_batch} x accumulation "
                    f"{self.cfg.train.accumulation}")
        if resumed_from is None:
            rewrite_jsonl(self.paths.metrics, [])
            self.log(f"run {self.cfg.name}: resolved config (every effective default)\n" + dump_config(self.cfg))
            self.log(contract_text())
            self.log(f"{model_line}, {batching}")
        else:
            self.log(f"run {self.cfg.name}: resumed from {latest} at step {resumed_from}; {batching}")

    def start_segment(self, previous: list[dict[str, Any]], step: int) -> None:
        self.segments = previous + [{"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                                     "from_step": self.resumed_from or 0, "step": step,
                                     "wall_time_s": 0.0, "end": "running"}]

    def check_same_run(self, path: Path, state: dict[str, Any]) -> None:
        diffs = config_differences(state["config"], self.cfg.to_dict())
        if diffs:
            raise CheckpointError(
                f"{path} was written with a different config (keys: {', '.join(diffs)}); "
                f"use a new output folder or delete {self.ckpt_dir}"
            )

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.out_dir))
        except ValueError:
            return str(path)

    def _notice(self, line: str) -> None:
        self.notices.append(line)
        self.log(f"integrity: {line}")

    def expected_rows(self, step: int) -> list[int]:
        """The steps of the metrics rows a run has logged once it has reached ``step``."""
        every, total = self.cfg.train.log_every, self.cfg.train.steps
        expected = list(range(every, step + 1, every))
        if step == total and total % every:
            expected.append(total)
        return expected

    def _covered_rows(self, rows: list[dict[str, Any]], step: int) -> int:
        """How many rows at the start of ``rows`` are exactly the rows expected up to ``step``."""
        n = 0
        for want, row in zip(self.expected_rows(step), rows, strict=False):  # the common prefix
            if row.get("step") != want:
                break
            n += 1
        return n

    def _choose_resume(self, device: torch.device) -> tuple[Path | None, dict[str, Any] | None]:
        """The newest intact checkpoint whose metrics rows are all present, and its state; reports what it skips.

        metrics.jsonl is cut back to that checkpoint atomically (rows that were missing are recomputed: the run
        resumes from an earlier checkpoint, or step 0, and ends with the numbers of an uninterrupted run).
        """
        metrics_path = self.paths.metrics
        metrics = load_jsonl(metrics_path)  # a corrupt line before the last: RecordFileError naming file:line
        path, state, skipped = newest_intact_checkpoint(self.ckpt_dir, map_location=device)
        for item in skipped:
            self._notice(f"{self._rel(item.path)}: {item.line().removeprefix('skipped ')}; "
                         f"resuming from an older checkpoint")
        if state is None:
            return None, None
        assert path is not None, "newest_intact_checkpoint returns a path with every state"
        self.check_same_run(path, state)  # before anything in the folder changes
        if metrics.torn_note:
            self._notice(f"metrics.jsonl:{metrics.torn_line}: torn last line dropped (a writer was stopped mid-line)")
        step = int(state["step"])
        covered = self._covered_rows(metrics.rows, step)
        expected = self.expected_rows(step)
        if covered < len(expected):
            have = expected[covered - 1] if covered else 0
            older, older_state, more = newest_intact_checkpoint(self.ckpt_dir, map_location=device, max_step=have)
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
        kept = metrics.lines[: len(self.expected_rows(step))]
        if len(kept) != len(metrics.lines) or metrics.torn_line is not None:
            rewrite_jsonl(metrics_path, kept)
        return path, state

    def _previous_segments(self) -> list[dict[str, Any]]:
        """Segments of the interrupted run this one continues (from status.json), [] for a run started afresh."""
        try:
            prior = read_json_object(self.paths.status)
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
                wall = (
                    updated - started
                    if isinstance(started, (int, float)) and isinstance(updated, (int, float))
                    else 0.0
                )
            out = [{"started": prior.get("started"), "step": prior.get("step"), "wall_time_s": wall}]
        if out and out[-1].get("end") in (None, "running"):
            out[-1]["end"] = "interrupted"
        return out


def progress_line(row: dict[str, Any], steps: int, eta_s: float, evaluated: bool) -> str:
    """The train.log line of one metrics row: step, losses, speed, ETA (and the evaluation when there was one)."""
    msg = (f"step {row['step']}/{steps} | loss_total {row['loss_total']:.4g} | "
           f"train_denoise_mse {row['train_denoise_mse']:.4g} | {row['sec_per_step']:.3f} s/step | "
           f"ETA {_duration(eta_s)}")
    if row.get("frac_sat") is not None:
        msg += f" | frac_sat {row['frac_sat']:.3f}"
    if evaluated:
        msg += f" | val_task_mse {row['val_task_mse']:.4g} (raw {row['val_task_mse_raw']:.4g})"
    return msg


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
