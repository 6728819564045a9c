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


def pytest_report_header(config):  # noqa: ANN001
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}"
