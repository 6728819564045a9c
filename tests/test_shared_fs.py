"""The results folder's locks must hold across nodes: the mounts that cannot promise it are named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ired.core.errors import ConfigError
from ired.runs.shared_fs import check_shared_locks, lock_problem, mount_of


def mounts(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "mounts"
    path.write_text(f"/dev/root / ext4 rw,relatime 0 0\n{line}\n")
    return path


@pytest.mark.parametrize("line, words", [
    ("fs@o2ib:/scratch /scratch lustre rw,localflock 0 0", ["/scratch is Lustre", "localflock"]),
    ("fs@o2ib:/scratch /scratch lustre rw,noflock 0 0", ["/scratch is Lustre mounted without flock"]),
    ("srv:/home /scratch nfs rw,vers=3,nolock 0 0", ["/scratch is NFS mounted with nolock"]),
    ("srv:/home /scratch nfs4 rw,local_lock=all 0 0", ["/scratch is NFS mounted with local_lock"]),
])
def test_mounts_whose_locks_stay_on_one_node_are_named(tmp_path: Path, line: str, words: list[str]) -> None:
    problem = lock_problem(Path("/scratch/me/results/paper"), mounts(tmp_path, line))
    assert problem is not None and all(w in problem for w in words), problem


@pytest.mark.parametrize("line", ["fs@o2ib:/scratch /scratch lustre rw,flock 0 0",
                                  "srv:/home /scratch nfs4 rw,vers=4.2,local_lock=none 0 0"])
def test_mounts_with_shared_locks_pass(tmp_path: Path, line: str) -> None:
    assert mount_of(Path("/scratch/x"), mounts(tmp_path, line))[0] == "/scratch"
    assert lock_problem(tmp_path / "results", mounts(tmp_path, line)) is None  # tmp_path: not under /scratch


def test_this_machines_results_folder_passes(tmp_path: Path) -> None:
    check_shared_locks(tmp_path / "results")  # a local filesystem: flock holds (one node)


def test_the_check_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ired.runs.shared_fs as shared_fs

    monkeypatch.setattr(shared_fs, "lock_problem", lambda path: "/scratch is Lustre mounted localflock")
    with pytest.raises(ConfigError) as err:
        check_shared_locks(tmp_path)
    assert "\n" not in str(err.value) and "On a real cluster" in str(err.value)
