"""Shared fixtures: tiny, fast configs (seconds on a 2-core CPU)."""

from __future__ import annotations

import os

import pytest
import torch

from ired.core.config_io import load_config
from ired.core.run_config import RunConfig

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


def pytest_report_header(config):  # noqa: ANN001
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}"


#: The longest test files first, as measured by `pytest --durations=0` (their sum per file). `make test` runs
#: `pytest -n 3 --dist loadfile --no-loadscope-reorder`: xdist then hands the files to its workers in collection
#: order, so the long ones start first and the short ones fill the gaps at the end (by default xdist would order
#: the files by their number of tests, which starts the few-test, minutes-long Slurm files last). Files not listed
#: follow in their usual order; the tests of one file keep theirs.
LONGEST_FIRST = (
    "test_workflow.py", "test_dispatch_local.py", "test_workflow_slurm.py", "test_workflow_sweep.py",
    "test_dispatch_slurm.py", "test_slices.py", "test_train.py", "test_integrity.py", "test_workflow_config.py",
    "test_collapse_scale.py", "test_validation.py", "test_sweep_slurm.py", "test_docs_commands.py",
    "test_dispatch_arrays.py", "test_plots.py",
)


def pytest_collection_modifyitems(config, items):  # noqa: ANN001
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
