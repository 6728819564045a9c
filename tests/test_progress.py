"""The progress bar of `ired train` / `ired evaluate`: drawn on a terminal, absent from log files (no carriage
return, no bar), and the train.log lines the same either way."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from conftest import TINY

STEPS = ["train.steps=40", "train.log_every=20", "train.eval_every=20", "train.checkpoint_every=20"]


def _train_args(tmp_path: Path, out: Path) -> list[str]:
    config = tmp_path / "defaults.yaml"
    config.write_text("{}\n")
    args = [sys.executable, "-m", "ired", "train", str(config), "--out", str(out)]
    for o in (*TINY, *STEPS):
        args += ["--set", o]
    return args


def _on_terminal(args: list[str], stdout_path: Path) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal (stdout to a file); its exit code and the terminal's text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    with stdout_path.open("w") as out:
        proc = subprocess.run(args, stdout=out, stderr=slave, timeout=300)
    os.close(slave)
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_no_progress_bar_in_a_log_file_and_a_bar_on_a_terminal(tmp_path: Path) -> None:
    log = tmp_path / "train.out"
    with log.open("w") as handle:
        proc = subprocess.run(_train_args(tmp_path, tmp_path / "logged"), stdout=handle, stderr=subprocess.STDOUT,
                              timeout=300)
    assert proc.returncode == 0, log.read_text()
    text = log.read_text()
    assert "\r" not in text and "step/s" not in text and "s/step]" not in text and "\x1b[" not in text
    progress_lines = [line for line in text.splitlines() if line.startswith("step ")]
    assert len(progress_lines) == 2, text  # the two log rows, as plain lines

    code, terminal = _on_terminal(_train_args(tmp_path, tmp_path / "interactive"), tmp_path / "stdout.txt")
    assert code == 0, terminal
    assert "\r" in terminal and "40/40" in terminal and "step" in terminal, terminal
    stdout = (tmp_path / "stdout.txt").read_text()
    assert [line for line in stdout.splitlines() if line.startswith("step ")] == [
        line for line in (tmp_path / "interactive" / "train.log").read_text().splitlines() if line.startswith("step ")]


def test_evaluate_draws_no_bar_into_a_pipe(tmp_path: Path) -> None:
    trained = subprocess.run(_train_args(tmp_path, tmp_path / "run"), capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    args = [sys.executable, "-m", "ired", "evaluate", str(tmp_path / "run" / "final.pt"), "--size", "16",
            "--split", "val", "--split", "val_harder"]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    code, terminal = _on_terminal(args, tmp_path / "eval.json")
    assert code == 0 and "2/2" in terminal and "evaluation" in terminal, terminal
    assert (tmp_path / "eval.json").read_text() == piped.stdout
