"""A slice of a run (no cluster needed): the trainer on the time-limit warning (SIGUSR2) or a SIGTERM finishes its
step, checkpoints, exits with ired.core.exit_codes.SLICE_END, and the same command resumes with the numbers of an
uninterrupted run; a resume under other code stops in one line unless IRED_ALLOW_CODE_CHANGE=1; local GPUs are
shared out one job per device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _dispatch_util import tiny_config

from ired.core import exit_codes
from ired.core.errors import ConfigError
from ired.dispatch import gpu_slots

STEPS = 200


def _train(cfg: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ired", "train", str(cfg), "--out", str(out)], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def _rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "sec_per_step"} for row in rows]


def _held_run(tmp_path: Path, name: str) -> tuple[Path, Path, subprocess.Popen]:
    """A run held after step 70 (faults.hold_at_step: no CPU while held), so a signal arrives at a known step."""
    cfg = tiny_config(tmp_path, name, train={"steps": STEPS, "log_every": 10, "eval_every": 50, "checkpoint_every": 50},
                      faults={"hold_at_step": 70})
    out = tmp_path / name
    proc = _train(cfg, out)
    deadline = time.time() + 120
    while not (out / "faults_fired.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.1)
    return cfg, out, proc


@pytest.mark.parametrize("sig, cause", [(signal.SIGUSR2, "the time-limit warning"), (signal.SIGTERM, "terminated")])
def test_a_stop_signal_ends_the_slice_at_a_checkpoint_and_the_rerun_has_the_uninterrupted_numbers(
        tmp_path: Path, sig: signal.Signals, cause: str) -> None:
    cfg, out, proc = _held_run(tmp_path, "sliced")
    alone = _train(cfg, tmp_path / "alone", env={})  # the same config, never interrupted (its hold released at once)
    (tmp_path / "alone").mkdir(exist_ok=True)
    (tmp_path / "alone" / "release").touch()
    proc.send_signal(sig)
    (out / "release").touch()  # the held step ends; the trainer sees the signal after it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == exit_codes.SLICE_END, err
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == 70 and cause in status["detail"], status
    assert (out / "checkpoints" / "step_0000070.pt").exists()  # not a multiple of checkpoint_every: the slice's own
    rerun = _train(cfg, out)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()
    assert alone.wait(timeout=300) == 0, alone.stderr.read()
    done = json.loads((out / "status.json").read_text())
    assert done["status"] == "completed" and done["resumed_from"] == 70
    assert _rows(out) == _rows(tmp_path / "alone")


def test_a_resume_under_other_code_stops_in_one_line_unless_allowed(tmp_path: Path) -> None:
    cfg, out, proc = _held_run(tmp_path, "pinned")
    recorded = json.loads((out / "code.json").read_text())
    assert len(recorded["digest"]) == 12 and recorded["version"].startswith("0.")
    proc.send_signal(signal.SIGTERM)
    (out / "release").touch()
    assert proc.wait(timeout=120) == exit_codes.SLICE_END
    (out / "code.json").write_text(json.dumps({**recorded, "digest": "000000000000", "version": "0.0.0+gold"}))
    refused = _train(cfg, out)
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == exit_codes.USER_ERROR, err
    line = err.strip().splitlines()[-1]
    assert "started under code 000000000000 (0.0.0+gold)" in line and "IRED_ALLOW_CODE_CHANGE=1" in line, err
    assert json.loads((out / "status.json").read_text())["step"] == 70  # nothing trained
    allowed = _train(cfg, out, env={"IRED_ALLOW_CODE_CHANGE": "1"})
    assert allowed.wait(timeout=300) == 0, allowed.stderr.read()
    changes = json.loads((out / "code.json").read_text())["changes"]
    assert [c["digest"] for c in changes] == [recorded["digest"]]
    assert "resumed under other code" in (out / "train.log").read_text()


def test_local_gpus_are_shared_out_one_job_per_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs asking for a GPU on a 2-device machine get devices 0 and 1; a third waits until one is free."""
    monkeypatch.setattr(gpu_slots, "slot_folder", lambda: tmp_path / "slots")
    env = gpu_slots.job_environment(1, [0, 1])
    script = ("import os, sys, time\nfrom ired.dispatch.gpu_slots import claimed_device\n"
              "with claimed_device():\n    print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True)\n"
              "    time.sleep(float(sys.argv[1]))\n")
    first = [subprocess.Popen([sys.executable, "-c", script, "3"], env={**os.environ, **env}, text=True,
                              stdout=subprocess.PIPE) for _ in range(2)]
    seen = sorted(p.stdout.readline().split()[-1] for p in first)
    assert seen == ["0", "1"]
    started = time.time()
    third = subprocess.run([sys.executable, "-c", script, "0"], env={**os.environ, **env}, text=True,
                           capture_output=True, timeout=60)
    assert third.stdout.split()[-1] in ("0", "1") and time.time() - started > 1.0  # it waited for a free device
    for p in first:
        p.wait(timeout=30)


def test_a_gpu_job_on_a_machine_without_one_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_slots, "machine_devices", lambda configured: [])
    with pytest.raises(ConfigError, match="asks for gpu=1 but this machine has 0 GPU"):
        gpu_slots.job_environment(1, None)
    assert gpu_slots.job_environment(0, None) == {}
