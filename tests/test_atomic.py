"""The one atomic writer (ired.runs.atomic) and its durability rule: temporary file, fsync, rename, fsync folder."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from ired.core.errors import StorageError
from ired.runs import atomic
from ired.runs.jsonl import append_jsonl, load_jsonl, rewrite_jsonl


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what is fsynced: 'file' or 'dir', in order."""
    calls: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return calls


def test_every_whole_file_write_fsyncs_the_file_then_the_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _synced(monkeypatch)
    atomic.write_text_atomic(tmp_path / "a" / "status.json", "{}\n")
    assert calls == ["file", "dir"]
    rewrite_jsonl(tmp_path / "metrics.jsonl", ['{"step": 5}'])  # the metrics cut-back: the same writer
    assert calls == ["file", "dir"] * 2
    assert (tmp_path / "a" / "status.json").read_text() == "{}\n"
    assert load_jsonl(tmp_path / "metrics.jsonl").rows == [{"step": 5}]
    assert not list(tmp_path.rglob("*.tmp"))


def test_bytes_are_written_as_given_with_the_umask(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3
    atomic.write_bytes_atomic(tmp_path / "x.pt", data)
    assert (tmp_path / "x.pt").read_bytes() == data
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.pt").stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file_and_names_the_target(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "status.json"
    atomic.write_text_atomic(target, "old\n")

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(StorageError, match=f"no space left on device writing {target}"):
        atomic.write_text_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left


def test_appends_fsync_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _synced(monkeypatch)
    append_jsonl(tmp_path / "metrics.jsonl", {"step": 5})  # a metrics row: not fsynced (the checkpoint is)
    assert calls == []
    atomic.append_text(tmp_path / "attempts.jsonl", '{"attempt": 1}\n', fsync=True)  # an attempt row: fsynced
    assert calls == ["file"]
    assert load_jsonl(tmp_path / "metrics.jsonl").rows == [{"step": 5}]


def test_a_checkpoint_file_holds_exactly_its_encoding(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from ired.runs.checkpoint import atomic_save, encode_checkpoint, load_checkpoint

    state = {"step": 3, "config": {}, "model": {"w": torch.arange(6.0).reshape(2, 3)}}
    atomic_save(state, tmp_path / "step.pt")
    assert (tmp_path / "step.pt").read_bytes() == encode_checkpoint(state)
    assert torch.equal(load_checkpoint(tmp_path / "step.pt")["model"]["w"], state["model"]["w"])
