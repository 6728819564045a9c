"""Fault injection for tests and drills (the run config's ``faults``; everything off by default).

- ``exit_on_node``: at start-up, exit with ``exit_code`` on that node, every time (a node-failure drill that only
  excluding the node cures); ``exit_on_first_node``: the same on the node where the run first started
  (remembered in ``faults_fired.json``), for a drill that cannot know which node the scheduler picks;
- ``oom_above_micro_batch``: raise a device out-of-memory error for every larger micro-batch (the dispatcher's
  fallbacks halve it);
- ``kill_at_step``: SIGKILL the trainer when it reaches that step, once: ``faults_fired.json`` in the run folder
  remembers what fired, so the rerun resumes instead of dying again;
- ``hold_at_step``: pause the trainer after that step (after its checkpoint, if the step has one) until a file
  named ``release`` appears in the run folder, once: a run held in flight at a known step, for as long as a drill
  needs it (a killed head, a Ctrl-C, a cancel), without burning CPU on extra steps;
- ``step_delay_s``: a pause after every step, so that a drill lasts a known wall time on any machine (a time-limit
  drill's slices); no number changes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ired.core.errors import StorageError
from ired.core.host import node_name
from ired.core.run_config import FaultsConfig
from ired.runs.atomic import write_text_atomic

FIRED_FILE = "faults_fired.json"
RELEASE_FILE = "release"  # hold_at_step: the file that lets a held trainer go on
HOLD_POLL_S = 0.1


class FaultInjector:
    """The faults of one run; ``log`` writes a line to the run's train.log (and the terminal)."""

    def __init__(self, cfg: FaultsConfig, out_dir: Path, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.log = log

    def at_start(self) -> None:
        """``exit_on_node``: exit with ``exit_code`` when this is the node; ``exit_on_first_node``: when this is the
        node of the run's first start (this one, the first time)."""
        here, node = node_name(), self.cfg.exit_on_node
        if self.cfg.exit_on_first_node:
            node = self._fired().get("exit_on_first_node", {}).get("node")
            if node is None:
                node = here
                self._record("exit_on_first_node", {"node": here, "time": time.time()})
        if node and here == node:
            self.log(f"fault injection: exiting with code {self.cfg.exit_code} on node {node}")
            sys.stdout.flush()
            sys.exit(self.cfg.exit_code)

    def check_micro_batch(self, micro_batch: int) -> None:
        """``oom_above_micro_batch``: a device out-of-memory error for a larger micro-batch."""
        limit = self.cfg.oom_above_micro_batch
        if limit is not None and micro_batch > limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (injected by faults.oom_above_micro_batch={limit}: micro-batch {micro_batch})"
            )

    def after_step(self, step: int) -> None:
        """``kill_at_step``: SIGKILL this process at that step; ``hold_at_step``: wait there until released. The
        first time only. ``step_delay_s``: a pause after every step."""
        if self.cfg.step_delay_s:
            time.sleep(self.cfg.step_delay_s)
        if self.cfg.kill_at_step == step and self._fire_once("kill_at_step", step):
            self.log(f"fault injection: SIGKILL at step {step}")
            os.kill(os.getpid(), signal.SIGKILL)
        if self.cfg.hold_at_step == step and self._fire_once("hold_at_step", step):
            release = self.out_dir / RELEASE_FILE
            self.log(f"fault injection: holding at step {step} until {release} exists")
            while not release.exists():
                time.sleep(HOLD_POLL_S)
            self.log(f"fault injection: released at step {step}")

    def _fire_once(self, name: str, step: int) -> bool:
        if name in self._fired():
            return False
        self._record(name, {"step": step, "time": time.time(), "host": socket.gethostname()})
        return True

    def _fired(self) -> dict:
        path = self.out_dir / FIRED_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def _record(self, name: str, entry: dict) -> None:
        path = self.out_dir / FIRED_FILE
        fired = self._fired()
        fired[name] = entry
        try:
            write_text_atomic(path, json.dumps(fired))
        except OSError as exc:
            raise StorageError.from_os_error(exc, path) from None
