"""How the training step is computed: ``train.kernel`` (autograd | fused) and ``train.precision`` (fp32 | bf16 | tf32).

The maths is the same under every choice; the defaults (``autograd``, ``fp32``) give the reference's numbers bit
for bit, the others differ by rounding (README, deviations):

- ``autograd``: grad_y E by autograd with ``create_graph`` and a double backward; Adam's for-each update; the EMA
  one parameter at a time.
- ``fused``: grad_y E written out (:func:`ired.science.models.explicit_energy_grad`) and backpropagated once; compiled
  by torch.compile (inductor) where it pays (:func:`compiles`, ``train.compile: auto``: a long run at a large batch,
  never a tiny, test or laptop run, whose compile time would cost more than it saves), and then the contrastive
  terms' E and mining's graph-free E and grad_y E compiled too; Adam's fused update; the EMA in one for-each call.
- every kernel: the batch of a step is prepared partly in a second thread (:func:`batch_helper`) when the run may
  use more than one; the numbers do not change.
- ``bf16``: the loss of each micro-batch under autocast to bfloat16 (matmuls in bfloat16, ~1e-2 relative);
  ``tf32``: float32 matmuls on TensorFloat-32 tensor cores (CUDA only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

from ired.core.errors import ConfigError
from ired.core.run_config import TrainConfig
from ired.science.compiled import CompiledEnergy, CompiledGraphFree
from ired.science.models import (
    Conditioning,
    EnergyKernel,
    EnergyMLP,
    energy_grad_terms,
    energy_inputs,
)

COMPILE_MIN_WORK = 10_000_000
"""``fused`` compiles when steps x batch_size reaches this (the paper scale: 50,000 x 2,048; laptop: 2,000 x 256)."""


def compiles(train: TrainConfig) -> bool:
    """Does ``train.kernel: fused`` compile its energy evaluations with torch.compile for this run
    (``train.compile``: ``auto`` where the work reaches :data:`COMPILE_MIN_WORK`)?"""
    if train.kernel != "fused" or train.compile == "never":
        return False
    return train.compile == "always" or train.steps * train.batch_size >= COMPILE_MIN_WORK


class FusedEnergyGrad:
    """``train.kernel: fused``: grad_y E written out, with a graph to the weights; compiled when asked."""

    def __init__(self, compile: bool) -> None:
        self.terms = torch.compile(energy_grad_terms, dynamic=False) if compile else energy_grad_terms
        self.compiled = compile

    def __call__(self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.terms(*energy_inputs(model, cond, y), True)


def training_kernel(train: TrainConfig) -> EnergyKernel:
    """How the training step evaluates E and grad_y E under ``train.kernel``: the reference's operations
    (``autograd``), the written-out gradient (``fused``), everything compiled (``fused`` where :func:`compiles`)."""
    if train.kernel != "fused":
        return EnergyKernel()
    if not compiles(train):
        return EnergyKernel(FusedEnergyGrad(compile=False))
    return EnergyKernel(FusedEnergyGrad(compile=True), CompiledEnergy(), CompiledGraphFree())


def make_optimizer(parameters: list[torch.Tensor], train: TrainConfig) -> torch.optim.Adam:
    """Adam with the run's settings; its fused update under ``train.kernel: fused``."""
    fused = {"fused": True} if train.kernel == "fused" else {}
    return torch.optim.Adam(parameters, lr=train.lr, betas=(train.beta1, train.beta2), **fused)


@torch.no_grad()
def update_ema(ema: list[torch.Tensor], raw: list[torch.Tensor], decay: float, kernel: str) -> None:
    """EMA := decay * EMA + (1 - decay) * raw, parameter by parameter (``autograd``) or in one for-each call."""
    if kernel == "fused":
        torch._foreach_lerp_(ema, raw, 1 - decay)
        return
    for e, p in zip(ema, raw, strict=True):
        e.lerp_(p, 1 - decay)


def batch_helper() -> ThreadPoolExecutor | None:
    """A second thread that prepares part of each step's batch (its levels and noises, half of the targets'
    inverses) while the trainer's thread draws the rest: the same numbers, each from its own generator, as one
    after the other (``EnergyDiffusion.draw_noise``, ``ired.science.data.spd_inverse``). None when torch may use
    one thread only (``train.threads: 1``): such a run keeps to one core."""
    if torch.get_num_threads() < 2:
        return None
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ired-batch")


def check_precision(precision: str, device: torch.device) -> None:
    """``tf32`` is a CUDA matmul mode: one line on any other device."""
    if precision == "tf32" and device.type != "cuda":
        raise ConfigError(f"train.precision=tf32 needs a CUDA device (this run's device is {device.type}); "
                          "allowed here: fp32, bf16")


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """The numeric mode of a training step's loss and backward under ``train.precision``."""
    if name == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    if name == "tf32":
        previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous
        return
    yield
