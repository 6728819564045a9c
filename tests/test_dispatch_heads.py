"""ired.dispatch.heads: Snakemake locks left by a dead head are removed, never those of a head that is alive.

Each head is a separate process (the lock is the kernel's flock, held for a process's life), as in real use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLAIM = "import sys; from ired.dispatch.heads import claim_workdir; print([p.name for p in claim_workdir(sys.argv[1])])"
LIVE = CLAIM + "; print('alive', flush=True); sys.stdin.read()"  # holds its claim until stdin closes


def claim(folder: Path) -> str:
    return subprocess.run([sys.executable, "-c", CLAIM, str(folder)], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def stale_locks(folder: Path) -> list[Path]:
    locks = folder / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    paths = [locks / "0.input.lock", locks / "0.output.lock"]
    for path in paths:
        path.write_text("results/q101-s0/final.pt\n")
    return paths


def test_locks_of_a_dead_head_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / ".snakemake"
    paths = stale_locks(folder)
    (folder / "locks" / "notes.txt").write_text("not a lock")
    assert claim(folder) == "['0.input.lock', '0.output.lock']"
    assert not any(p.exists() for p in paths) and (folder / "locks" / "notes.txt").exists()


def test_locks_are_kept_while_another_head_is_alive(tmp_path: Path) -> None:
    folder = tmp_path / ".snakemake"
    live = subprocess.Popen([sys.executable, "-c", LIVE, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "[]" and live.stdout.readline().strip() == "alive"
        paths = stale_locks(folder)  # the live head's own locks, as far as anyone can tell
        assert claim(folder) == "[]" and all(p.exists() for p in paths)
    finally:
        live.stdin.close()
        live.wait(timeout=60)
    assert claim(folder) == "['0.input.lock', '0.output.lock']"  # that head has ended: now they are stale
