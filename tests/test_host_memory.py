"""ired.core.host.keep_freed_memory: a large block comes from the heap and stays there once freed, for the next one
to reuse, instead of being mapped afresh (and faulted in page by page) each time; the trainer and the checkpoint
evaluator ask for it. Page faults per training step, measured: README, Speed."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from ired.core.config_io import load_config
from ired.core.host import keep_freed_memory

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# a 16 MiB tensor allocated, written and freed in a fresh process; glibc's own account (mallinfo2) of the bytes in
# mapped blocks and of the free bytes kept in its heap, before, while held and after
_BLOCK = """
import ctypes, json, sys, torch
from ired.core.host import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def account():
    info = libc.mallinfo2()
    return {"mapped": info.hblkhd, "free_in_heap": info.fordblks}
before = account()
block = torch.empty(4 * 1024 * 1024).fill_(1.0)
held = account()
del block
print(json.dumps({"before": before, "held": held, "after": account()}))
"""
MIB = 1024 * 1024


def _account(mode: str) -> dict[str, dict[str, int]]:
    out = subprocess.run([sys.executable, "-c", _BLOCK, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's malloc's; elsewhere keep_freed_memory does nothing")
def test_a_freed_block_stays_in_the_heap_for_the_next_one() -> None:
    default = _account("default")
    assert default["held"]["mapped"] - default["before"]["mapped"] >= 16 * MIB  # mapped afresh
    assert default["after"]["mapped"] == default["before"]["mapped"]  # and handed back when freed
    kept = _account("keep")
    assert kept["held"]["mapped"] == kept["before"]["mapped"]  # from the heap
    assert kept["after"]["free_in_heap"] >= 16 * MIB  # kept there, free, once freed


def test_it_reports_whether_it_took_and_is_idempotent() -> None:
    assert keep_freed_memory() is GLIBC
    assert keep_freed_memory() is GLIBC


def test_the_trainer_and_the_evaluator_ask_for_it(monkeypatch, tmp_path: Path) -> None:
    import ired.evaluation.evaluate as evaluate_module
    import ired.training.trainer as trainer_module

    calls: list[str] = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append("trainer") or True)
    monkeypatch.setattr(evaluate_module, "keep_freed_memory", lambda: calls.append("evaluator") or True)
    cfg = load_config(None, ["data.n=3", "model.width=16", "model.time_dim=8", "train.batch_size=8", "train.steps=1",
                             "device=cpu"])
    trainer = trainer_module.Trainer(cfg, tmp_path / "run", echo=False)
    trainer.save(tmp_path / "step.pt")
    evaluate_module.CheckpointEvaluator(tmp_path / "step.pt", device="cpu")
    assert calls == ["trainer", "evaluator"]
