"""Compiled energy evaluations (torch.compile, inductor) for the options that ask for them: the contrastive terms'
E and mining's under ``train.kernel: fused`` at a size where compiling pays (``ired.training.kernel``), inference's
under ``inference.kernel: compiled``. The same maths as the written-out functions of :mod:`ired.science.models`,
rounded differently (an accept-or-reject decision between two energies equal to rounding may go the other way)."""

from __future__ import annotations

from functools import lru_cache

import torch

from ired.science.models import (
    Conditioning,
    EnergyMLP,
    GraphFreeEnergy,
    energy_grad_terms,
    energy_inputs,
    energy_terms,
)


class CompiledEnergy:
    """The contrastive terms' E with a graph to the weights, compiled, its backward too."""

    def __init__(self) -> None:
        self.terms = torch.compile(energy_terms, dynamic=False)

    def __call__(self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> torch.Tensor:
        return self.terms(*energy_inputs(model, cond, y))


class CompiledGraphFree(GraphFreeEnergy):
    """E and grad_y E without a graph, the written-out gradient compiled. ``dynamic``: torch.compile's (False: one
    graph per batch size, as training's fixed batches; None: a graph for any batch size after the second one, as
    inference's chunks and splits)."""

    def __init__(self, dynamic: bool | None = False) -> None:
        self.terms = torch.compile(energy_terms, dynamic=dynamic)
        self.grad_terms = torch.compile(energy_grad_terms, dynamic=dynamic)

    def energy(self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.terms(*energy_inputs(model, cond, y))

    def energy_and_grad(
        self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.grad_terms(*energy_inputs(model, cond, y.detach()))


@lru_cache(maxsize=1)
def inference_graph_free() -> CompiledGraphFree:
    """The one compiled evaluator of ``inference.kernel: compiled`` in this process (its graphs compile once)."""
    return CompiledGraphFree(dynamic=None)
