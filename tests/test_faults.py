"""Fault injection's start-up drills, without a cluster: the node a run exits on."""

import json

import pytest

from ired.core.run_config import FaultsConfig
from ired.training.faults import FIRED_FILE, FaultInjector


def _start(tmp_path, monkeypatch, node: str, **faults) -> int | None:
    """The exit code at_start raised on ``node`` (SLURMD_NODENAME, as on a Slurm node), or None."""
    monkeypatch.setenv("SLURMD_NODENAME", node)
    lines: list[str] = []
    try:
        FaultInjector(FaultsConfig(**faults), tmp_path, lines.append).at_start()
    except SystemExit as exc:
        assert lines and f"on node {node}" in lines[-1]
        return int(exc.code)
    return None


def test_exit_on_first_node_exits_wherever_the_run_first_started_and_only_there(tmp_path, monkeypatch):
    assert _start(tmp_path, monkeypatch, "node2", exit_on_first_node=True) == 120  # first start: exits
    assert json.loads((tmp_path / FIRED_FILE).read_text())["exit_on_first_node"]["node"] == "node2"
    assert _start(tmp_path, monkeypatch, "node2", exit_on_first_node=True) == 120  # the same node: again
    assert _start(tmp_path, monkeypatch, "node1", exit_on_first_node=True) is None  # another node: goes on
    assert _start(tmp_path, monkeypatch, "node2", exit_on_first_node=True, exit_code=75) == 75


@pytest.mark.parametrize("node, code", [("node1", 120), ("node2", None)])
def test_exit_on_node_exits_on_that_node_only(tmp_path, monkeypatch, node, code):
    assert _start(tmp_path, monkeypatch, node, exit_on_node="node1") == code
    assert not (tmp_path / FIRED_FILE).exists()
