"""ired.core.host.keep_freed_memory: the trainer's steps stop taking fresh pages from the system (page faults) for the
buffers that the previous step freed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from ired.core.host import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# minor page faults per training step at batch 2048, width 512, after four steps; "default": the trainer's call of
# keep_freed_memory made a no-op, glibc's own thresholds
_STEPS = """
import resource, sys, tempfile, pathlib
import ired.training.trainer as trainer_module
from ired.core.config_io import load_config
if sys.argv[1] == "default":
    trainer_module.keep_freed_memory = lambda: False
cfg = load_config(None, ["data.n=20", "model.width=512", "train.batch_size=2048", "device=cpu"])
trainer = trainer_module.Trainer(cfg, pathlib.Path(tempfile.mkdtemp()) / "run", echo=False)
for _ in range(4):
    trainer.train_step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    trainer.train_step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


def _faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's malloc's; elsewhere keep_freed_memory does nothing")
def test_training_steps_reuse_freed_memory() -> None:
    default, kept = _faults_per_step("default"), _faults_per_step("keep")
    # measured on the development machine: 2,200-3,100 faults per step by default, 200-400 kept
    assert default > 1000
    assert kept < default / 3


def test_it_reports_whether_it_took_and_is_idempotent() -> None:
    assert keep_freed_memory() is GLIBC
    assert keep_freed_memory() is GLIBC
