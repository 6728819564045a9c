"""Shared fixtures: tiny, fast configs (seconds on a 2-core CPU)."""

from __future__ import annotations

import os

import pytest
import torch

from ired.config import RunConfig, load_config

TINY = [
    "name=tiny",
    "data.n=3",
    "data.val_size=64",
    "data.val_harder_size=64",
    "data.train_subset_size=64",
    "model.width=32",
    "model.time_dim=16",
    "train.steps=60",
    "train.batch_size=64",
    "train.log_every=20",
    "train.eval_every=20",
    "train.checkpoint_every=20",
    "train.threads=1",
    "inference.steps_per_level=2",
    "device=cpu",
]


def tiny_config(*overrides: str) -> RunConfig:
    return load_config(None, [*TINY, *overrides])


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def tiny():
    return tiny_config


def _xdist_group(item: pytest.Item) -> str | None:
    """The worker group of a test under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), else None (any worker).

    - The Slurm-marked tests of one file run on one worker, in file order: each file's tests drive the shared 2-node
      local cluster and read its accounting, and two files at once already fill both nodes.
    - Tests that share a module- or session-scoped fixture run on one worker, in file order, so the fixture is built
      once and the tests that read the state it leaves (the workflow tests) see it as a single worker would.
    """
    if item.get_closest_marker("slurm"):
        return f"slurm:{item.path.name}"
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        scopes = {fixture.scope for fixtures in info.name2fixturedefs.values() for fixture in fixtures}
        if scopes & {"module", "package", "session"}:
            return f"shared:{item.path.name}"
    return None


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    for item in items:
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_report_header(config):  # noqa: ANN001
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
