"""Run-folder integrity, through `ired train` as a user runs it: damaged checkpoints, damaged metrics logs, two
trainers on one folder, a killed trainer, a full disk. Every case ends either in one line naming the file (no
traceback) or in a resumed run with the numbers of an uninterrupted one."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, tiny_config

from ired.core.errors import CheckpointError, RecordFileError
from ired.reporting.run_record import load_run
from ired.runs.checkpoint import load_checkpoint
from ired.runs.checkpoint_format import verify_checkpoint
from ired.runs.jsonl import load_jsonl, read_jsonl
from ired.runs.state import lock_holder, run_state
from ired.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
# 80 steps, a row every 20 (evaluated every 40), a checkpoint every 20, the last three kept: resumes have an older
# checkpoint to fall back on
EMPTY_CONFIG = REPO / "tests" / "data" / "defaults.yaml"  # `{}`: every key at its default, the overrides below
RUN = ("train.steps=80", "train.keep_checkpoints=3", "train.eval_every=40", "objective.name=softplus",
       "negatives.name=replay", "negatives.buffer_size=100", "data.val_size=32", "data.val_harder_size=32",
       "data.train_subset_size=32")


def cli(out: Path, *overrides: str, preexec=None, **popen) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "ired.cli", "train", str(EMPTY_CONFIG), "--out", str(out)]
    for o in (*TINY, *RUN, *overrides):
        args += ["--set", o]
    return subprocess.run(args, capture_output=True, text=True, preexec_fn=preexec, timeout=300, **popen)


def science(run_dir: Path) -> list[dict]:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in rows]


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    return all(torch.equal(sa[part][k], sb[part][k]) for part in ("model", "ema") for k in sa[part])


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The uninterrupted run every resumed run must reproduce exactly."""
    out = tmp_path_factory.mktemp("whole") / "run"
    train(tiny_config(*RUN), out, echo=False)  # in-process: the same numbers as `ired train`, without its start-up
    return out


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """A run SIGKILLed at step 70: checkpoints at 20, 40, 60; rows 20, 40, 60; status.json still 'running'."""
    out = tmp_path_factory.mktemp("killed") / "run"
    proc = cli(out, "faults.kill_at_step=70")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return out


def copy_of(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def test_killed_trainer_reads_interrupted_and_resumes_past_a_truncated_checkpoint_and_a_torn_row(
        tmp_path, whole, killed):
    out = copy_of(killed, tmp_path / "run")
    # the file still says running (nothing was left to rewrite it); every reader says interrupted
    assert json.loads((out / "status.json").read_text())["status"] == "running"
    state = run_state(out)
    assert state.state == "interrupted" and state.holder is None and "no live process" in state.detail
    assert load_run({"experiment": "x", "seed": 0, "run_dir": out}).status["status"] == "interrupted"
    newest = out / "checkpoints" / "step_0000060.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="step_0000060.pt: corrupt checkpoint \\(truncated"):
        load_checkpoint(newest)
    with open(out / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 80, "train_denoise_mse": 0.3')  # a writer killed mid-line
    content = load_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in content.rows] == [20, 40, 60] and content.torn_line == 4

    proc = cli(out)
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "at step 40" in proc.stdout
    notice = [ln for ln in (out / "train.log").read_text().splitlines() if "step_0000060.pt" in ln]
    assert len(notice) == 1 and "truncated" in notice[0] and "integrity:" in notice[0], notice
    assert "metrics.jsonl:4: torn last line dropped" in (out / "train.log").read_text()
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "completed" and any("step_0000060.pt" in n and "truncated" in n
                                                   for n in status["integrity"])
    assert (out / "checkpoints" / "step_0000060.pt.corrupt").exists()  # kept for inspection, never picked again
    assert science(out) == science(whole)
    assert same_weights(out / "final.pt", whole / "final.pt")
    # the wall time sums both segments: the killed one and the resumed one
    segments = status["segments"]
    assert [s["end"] for s in segments] == ["interrupted", "completed"]
    assert [s["from_step"] for s in segments] == [0, 40]
    assert status["wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in segments), abs=0.01)
    assert segments[0]["wall_time_s"] > 0


def test_flipped_bytes_are_detected_not_loaded(tmp_path, whole):
    final = tmp_path / "final.pt"
    data = bytearray((whole / "final.pt").read_bytes())
    data[len(data) * 2 // 3] ^= 0x10  # one bit, in the tensors' bytes
    final.write_bytes(bytes(data))
    assert verify_checkpoint(whole / "final.pt") is True
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        verify_checkpoint(final)
    proc = subprocess.run([sys.executable, "-m", "ired.cli", "evaluate", str(final), "--size", "8"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert str(final) in line and "corrupt checkpoint (checksum mismatch" in line


def test_corrupt_middle_line_is_one_line_naming_file_and_line(tmp_path, killed):
    out = copy_of(killed, tmp_path / "run")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    lines[0] = lines[0][:40] + "#garbage#" + lines[0][40:]
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    proc = cli(out)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert f"{out / 'metrics.jsonl'}:1: corrupt line" in line, line
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before  # nothing touched
    with pytest.raises(RecordFileError, match=r"metrics.jsonl:1: corrupt line"):
        load_run({"experiment": "x", "seed": 0, "run_dir": out})
    (out / "status.json").write_text('{"status": "comp')
    (out / "metrics.jsonl").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(RecordFileError, match=r"status.json:1: corrupt file, not valid JSON"):
        load_run({"experiment": "x", "seed": 0, "run_dir": out})


def test_summary_script_ends_with_the_one_line(tmp_path):
    """The pipeline's summary script (what `snakemake summary` runs) on a corrupt status.json: the line reaches the
    terminal and the log, exit 2, no traceback."""
    run = tmp_path / "results" / "r-s0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 20}\n')
    (run / "status.json").write_text('{"status": ')
    log = tmp_path / "summary.log"
    fake = (
        "import types, runpy\n"
        "snakemake = types.SimpleNamespace(\n"
        f"    log=[{str(log)!r}], input=types.SimpleNamespace(cross_eval=None, sweep=None),\n"
        f"    output=types.SimpleNamespace(csv={str(tmp_path / 's.csv')!r}, md={str(tmp_path / 's.md')!r},\n"
        f"        runs={str(tmp_path / 'r.csv')!r}),\n"
        f"    params=types.SimpleNamespace(runs=[{{'experiment': 'r', 'seed': 0, 'run_dir': {str(run)!r}}}]))\n"
        f"runpy.run_path({str(REPO / 'workflow/scripts/summary.py')!r}, init_globals={{'snakemake': snakemake}})\n"
    )
    proc = subprocess.run([sys.executable, "-c", fake], capture_output=True, text=True)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert f"{run / 'status.json'}:1: corrupt file" in line
    assert line in log.read_text() and "Traceback" not in log.read_text()


def test_missing_metrics_rows_are_recomputed_not_silently_skipped(tmp_path, whole, killed):
    out = copy_of(killed, tmp_path / "run")
    rows = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text(rows[0] + "\n")  # rows after step 20 lost
    proc = cli(out)
    assert proc.returncode == 0, proc.stderr
    assert "at step 20" in proc.stdout
    notice = json.loads((out / "status.json").read_text())["integrity"]
    assert any("metrics.jsonl has its rows only up to step 20 (missing step 40)" in n and "step_0000020.pt" in n
               for n in notice), notice
    assert science(out) == science(whole)
    # an emptied log: nothing to build on but step 0; the run says so and recomputes everything
    (out / "metrics.jsonl").write_text("")
    (out / "final.pt").unlink()
    (out / "status.json").write_text(json.dumps({"status": "running", "step": 80}))
    train(tiny_config(*RUN), out, echo=False)
    assert "rows only up to step 0" in (out / "train.log").read_text()
    assert science(out) == science(whole)
    assert same_weights(out / "final.pt", whole / "final.pt")


def test_one_trainer_per_run_folder(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "ired.cli", "train", str(EMPTY_CONFIG), "--out", str(out)]
    for o in (*TINY, "train.steps=100000", "train.log_every=1000000", "train.eval_every=1000000"):
        args += ["--set", o]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while lock_holder(out) is None or not (out / "status.json").exists():
            assert first.poll() is None and time.time() < deadline, first.stderr.read() if first.stderr else ""
            time.sleep(0.2)
        assert run_state(out).state == "running" and run_state(out).holder["pid"] == first.pid
        second = cli(out)
        assert second.returncode == 2
        line = one_line(second.stderr)
        assert f"{out} is already being trained by pid {first.pid} on host" in line, line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel freed the lock with the process: the reader says interrupted, and a new trainer may start
    assert lock_holder(out) is None and run_state(out).state == "interrupted"


def _disk_full_run(out: Path, free_bytes: int) -> subprocess.CompletedProcess:
    """Resume ``out`` (a mount point or a plain folder) with at most ``free_bytes`` more to write."""
    mount = shutil.which("mount")
    if os.geteuid() == 0 and mount and _can_mount_tmpfs(out.parent / "probe"):
        # a real full file system: a tmpfs that holds the run folder plus free_bytes
        used = sum(p.stat().st_size + 4096 for p in out.rglob("*") if p.is_file())
        stash = out.with_name("stash")
        shutil.move(out, stash)
        out.mkdir()
        subprocess.run([mount, "-t", "tmpfs", "-o", f"size={used + free_bytes}", "tmpfs", str(out)], check=True)
        shutil.copytree(stash, out, dirs_exist_ok=True)
        return cli(out)

    def limit() -> None:  # no mount possible: the per-file size limit gives the same EFBIG / ENOSPC path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (free_bytes, free_bytes))

    return cli(out, preexec=limit)


def _can_mount_tmpfs(probe: Path) -> bool:
    probe.mkdir(exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", str(probe)], check=True)
    return ok


def test_disk_full_is_one_line_and_the_run_resumes_afterwards(tmp_path, whole, killed):
    out = copy_of(killed, tmp_path / "run")
    ckpt_size = (out / "checkpoints" / "step_0000060.pt").stat().st_size
    proc = _disk_full_run(out, ckpt_size // 2)  # room for log lines and rows, not for the next checkpoint
    mounted = os.path.ismount(out)
    try:
        assert proc.returncode == 4, proc.stderr
        line = one_line(proc.stderr)
        reason = "no space left on device" if mounted else "file too large"
        assert line.startswith(f"ired train: error: {reason} writing {out}/"), line
        # the previous state is intact: the checkpoint verifies, no half-written file is left behind
        assert verify_checkpoint(out / "checkpoints" / "step_0000060.pt")
        assert not [p for p in out.rglob("*.tmp")]
        assert run_state(out).state in ("failed", "interrupted")
        status = json.loads((out / "status.json").read_text())
        assert status["status"] in ("failed", "running")
        if status["status"] == "failed":
            assert reason in status["detail"]
        load_jsonl(out / "metrics.jsonl")  # readable (a torn last row at most)
        if mounted:  # space again: the same command resumes
            subprocess.run(["mount", "-o", f"remount,size={64 << 20}", str(out)], check=True)
        proc = cli(out)
        assert proc.returncode == 0, proc.stderr
        assert science(out) == science(whole)
        assert same_weights(out / "final.pt", whole / "final.pt")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(out)], check=False)


def test_storage_error_is_also_an_oserror():
    from ired.core.errors import StorageError

    err = StorageError.from_os_error(OSError(errno.ENOSPC, "No space left on device"), "x/step_0000200.pt")
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert str(err) == "no space left on device writing x/step_0000200.pt"


def test_the_dispatcher_head_restores_only_a_verified_checkpoint(tmp_path):
    """The head (no torch) picks the newest checkpoint whose checksum holds when it keeps a diverged run's result."""
    from ired.runs.checkpoint import save_checkpoint
    from ired.runs.checkpoint_format import newest_verified_checkpoint, step_path

    folder = tmp_path / "checkpoints"
    for step in (1, 2):
        save_checkpoint({"model": {}, "config": {}, "step": step}, step_path(folder, step))
    assert newest_verified_checkpoint(folder) == step_path(folder, 2)
    data = step_path(folder, 2).read_bytes()
    step_path(folder, 2).write_bytes(data[:-10])  # truncated newest
    assert newest_verified_checkpoint(folder) == step_path(folder, 1)
    probe = "import sys, ired.dispatch.runner; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "the dispatcher head must not import torch"
