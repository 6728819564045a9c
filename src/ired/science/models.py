"""The energy network E(x, y, t) of IRED and its gradient, the denoiser.

An MLP on concat[x, y] (x = A, y = a candidate A^-1, both flattened): Linear(2d -> W) then depth-1 Linear(W -> W)
layers, swish activations; the time step enters through a sinusoidal embedding and an MLP, and modulates every
hidden layer after the first FiLM-style, with the activation AFTER the modulation as in the IRED release:
h = swish(fc(h) * (gain + 1) + bias). Two heads:

- ``vector`` (IRED release): fc4: W -> d, E = ||fc4(h)||^2 >= 0.
- ``scalar`` (IRED paper, Table 8): fc4: W -> 1, E = fc4(h), no sign constraint.

With the defaults (d = 400, W = 512, depth 3, time_dim 128) the model has about 1.44M parameters.
The denoiser is eps_hat = grad_y E(x, y_t, t). Without a graph to the weights (inference, mining, evaluation) it
is written out (:func:`explicit_energy_grad`): the backward pass of this MLP by hand, with the very operations
autograd runs, so the numbers are autograd's bit for bit, without building a graph. Training takes it with
autograd and double backprop (``train.kernel: autograd``) or through the written-out gradient, backpropagated
once (``train.kernel: fused``, ``ired.training.kernel``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ired.core.run_config import ModelConfig, RunConfig


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) integer steps -> (B, dim) [sin | cos] features with geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1))
    angles = t.float().unsqueeze(-1) * freqs.unsqueeze(0)  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@dataclass
class Conditioning:
    """What the energy needs of (x, t) besides y, computed once and reused across many y.

    ``x_features`` = fc_x(x) (B, W); ``film`` holds one (gain, bias) pair (B, W) per modulated layer.
    Inference reuses it for every step of a level; training reuses it for positives, negatives and mining.
    """

    x_features: torch.Tensor
    film: list[tuple[torch.Tensor, torch.Tensor]]

    def detach(self) -> Conditioning:
        return Conditioning(self.x_features.detach(), [(g.detach(), b.detach()) for g, b in self.film])

    @property
    def gains(self) -> list[torch.Tensor]:
        return [gain for gain, _ in self.film]

    @property
    def biases(self) -> list[torch.Tensor]:
        return [bias for _, bias in self.film]


class EnergyMLP(nn.Module):
    """E(x, y, t) -> (B,) energies.

    The first layer Linear(2d -> W) on concat[x, y] is stored as two blocks, fc_x (no bias) and fc_y, initialised
    like the single Linear(2d -> W): the same function and parameter count, but the x block can be computed once
    per problem. The time MLP and FiLM layers run once per distinct t in the batch (10 at most), not per sample.
    """

    def __init__(self, d: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.d = d
        self.head_kind = cfg.head
        self.time_dim = cfg.time_dim
        W = cfg.width
        self.fc_x = nn.Linear(d, W, bias=False)
        self.fc_y = nn.Linear(d, W)
        bound = 1 / math.sqrt(2 * d)  # nn.Linear(2d, W)'s default init range
        for param in (self.fc_x.weight, self.fc_y.weight, self.fc_y.bias):
            nn.init.uniform_(param, -bound, bound)
        self.hidden = nn.ModuleList(nn.Linear(W, W) for _ in range(cfg.depth - 1))
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.time_dim, cfg.time_dim), nn.GELU(), nn.Linear(cfg.time_dim, cfg.time_dim)
        )
        self.film = nn.ModuleList(nn.Linear(cfg.time_dim, 2 * W) for _ in range(cfg.depth - 1))
        self.head = nn.Linear(W, d if cfg.head == "vector" else 1)

    def condition(self, x: torch.Tensor, t: torch.Tensor) -> Conditioning:
        levels, index = torch.unique(t, return_inverse=True)  # (L,), (B,)
        temb = self.time_mlp(sinusoidal_embedding(levels, self.time_dim))  # (L, time_dim)
        film = []
        for layer in self.film:
            gain, bias = layer(temb).chunk(2, dim=-1)  # (L, W) each
            # (B, W) each; the "+ 1" is applied once per level here
            film.append(((gain + 1).index_select(0, index), bias.index_select(0, index)))
        return Conditioning(self.fc_x(x), film)

    def energy(self, cond: Conditioning, y: torch.Tensor) -> torch.Tensor:
        return energy_terms(*energy_inputs(self, cond, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.energy(self.condition(x, t), y)


def _layers(
    x_features: torch.Tensor, gains: list[torch.Tensor], biases: list[torch.Tensor], y: torch.Tensor,
    weights: list[torch.Tensor],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The pre-activations (B, W) of every hidden layer and the head's output (B, d) or (B, 1)."""
    pre = [x_features + F.linear(y, weights[0], weights[1])]
    h = F.silu(pre[0])
    # one gain and one bias per hidden layer: silu(W h * (gain + 1) + bias), the release's order; strict=False keeps
    # the function traceable by torch.compile on older torch releases (the range in pyproject.toml)
    for i, (gain, bias) in enumerate(zip(gains, biases, strict=False)):
        pre.append(torch.addcmul(bias, F.linear(h, weights[2 + 2 * i], weights[3 + 2 * i]), gain))
        h = F.silu(pre[-1])
    return pre, F.linear(h, weights[-2], weights[-1])


def energy_terms(
    x_features: torch.Tensor,
    gains: list[torch.Tensor],
    biases: list[torch.Tensor],
    y: torch.Tensor,
    weights: list[torch.Tensor],
    vector_head: bool,
) -> torch.Tensor:
    """E (B,) of the energy MLP from plain tensors (:func:`energy_grad_terms`' arguments): what
    :meth:`EnergyMLP.energy` computes, as a function torch.compile can take whole."""
    _, out = _layers(x_features, gains, biases, y, weights)
    return out.pow(2).sum(-1) if vector_head else out.squeeze(-1)


def energy_grad_terms(
    x_features: torch.Tensor,
    gains: list[torch.Tensor],
    biases: list[torch.Tensor],
    y: torch.Tensor,
    weights: list[torch.Tensor],
    vector_head: bool,
    differentiable: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """E and grad_y E of the energy MLP from plain tensors (a function torch.compile can take whole).

    ``weights`` = [fc_y.weight, fc_y.bias, hidden weights and biases in turn..., head.weight, head.bias]. The
    backward pass is autograd's for :meth:`EnergyMLP.energy`, operation for operation: pow's 1 * (2 * out), the
    head's ``grad @ W``, aten's ``silu_backward``, addcmul's ``grad * gain``: the same numbers bit for bit.
    ``differentiable``: silu' written as s (1 + z (1 - s)), s = sigmoid(z) (aten's ``silu_backward`` has no
    derivative), so that a loss on grad_y E can be backpropagated to the weights once, without a double backward;
    the same function, within float32 rounding.
    """
    silu_grad = _silu_grad if differentiable else torch.ops.aten.silu_backward
    pre, out = _layers(x_features, gains, biases, y, weights)
    if vector_head:
        energy, grad = out.pow(2).sum(-1), 2 * out
    else:
        energy, grad = out.squeeze(-1), torch.ones_like(out)
    grad = grad.mm(weights[-2])
    for i in reversed(range(len(gains))):
        grad = (silu_grad(grad, pre[i + 1]) * gains[i]).mm(weights[2 + 2 * i])
    return energy, silu_grad(grad, pre[0]).mm(weights[0])


def _silu_grad(grad: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """grad * silu'(z) from differentiable operations."""
    s = torch.sigmoid(z)
    return grad * (s * (1 + z * (1 - s)))


def energy_weights(model: EnergyMLP) -> list[torch.Tensor]:
    """The weights :func:`energy_grad_terms` takes, in its order."""
    weights = [model.fc_y.weight, model.fc_y.bias]
    for layer in model.hidden:
        assert isinstance(layer, nn.Linear), "EnergyMLP.hidden holds Linear layers"
        weights += [layer.weight, layer.bias]
    return [*weights, model.head.weight, model.head.bias]


EnergyInputs = tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor, list[torch.Tensor], bool]
"""The arguments :func:`energy_terms` and :func:`energy_grad_terms` share, in their order."""


def energy_inputs(model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> EnergyInputs:
    """``model``'s energy at ``y`` under ``cond`` as plain tensors: (x_features, gains, biases, y, weights,
    vector_head), the leading arguments of :func:`energy_terms` and :func:`energy_grad_terms`."""
    return cond.x_features, cond.gains, cond.biases, y, energy_weights(model), model.head_kind == "vector"


def explicit_energy_grad(
    model: EnergyMLP, cond: Conditioning, y: torch.Tensor, differentiable: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (B,) and grad_y E (B, d) written out (:func:`energy_grad_terms`)."""
    return energy_grad_terms(*energy_inputs(model, cond, y), differentiable)


EnergyGrad = Callable[[EnergyMLP, Conditioning, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(model, cond, y) -> energies (B,) and grad_y E (B, d), with a graph to the weights: how training takes it."""


def energy_and_grad(
    model: EnergyMLP, cond: Conditioning, y: torch.Tensor, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (B,) and grad_y E (B, d) for the conditioning ``cond`` = model.condition(x, t).

    ``create_graph=True`` keeps the graph of the gradient so a loss on it can be backpropagated to the weights
    (double backprop, as in training). Otherwise both outputs are detached: for an :class:`EnergyMLP` computed
    without a graph (:func:`explicit_energy_grad`, autograd's numbers bit for bit), for any other energy model (a
    test's oracle) by autograd on a detached leaf.
    """
    if not create_graph and isinstance(model, EnergyMLP):
        with torch.no_grad():
            return explicit_energy_grad(model, cond, y.detach())
    with torch.enable_grad():
        if not create_graph:  # another energy model (a test's oracle): autograd on a leaf
            y = y.detach().requires_grad_(True)
        elif not y.requires_grad:
            y = y.requires_grad_(True)
        energy = model.energy(cond, y)
        (grad,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
    if not create_graph:
        return energy.detach(), grad.detach()
    return energy, grad


def autograd_energy_grad(model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss's grad_y E under ``train.kernel: autograd`` (the default): autograd keeping the gradient's
    graph, for a double backward."""
    return energy_and_grad(model, cond, y, create_graph=True)


Energy = Callable[[EnergyMLP, Conditioning, torch.Tensor], torch.Tensor]
"""(model, cond, y) -> energies (B,) with a graph to the weights: how training takes the contrastive terms' E."""


def graph_energy(model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> torch.Tensor:
    """The contrastive terms' E under ``train.kernel: autograd`` (the default): the model's forward."""
    return model.energy(cond, y)


class GraphFreeEnergy:
    """E and grad_y E without an autograd graph, as mining's descent takes them (``ired.science.inference.descend``):
    written out, autograd's numbers bit for bit. ``ired.science.compiled`` has a compiled one."""

    def energy(self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.energy(cond, y)

    def energy_and_grad(
        self, model: EnergyMLP, cond: Conditioning, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return energy_and_grad(model, cond, y)


EXACT = GraphFreeEnergy()
"""The graph-free E and grad_y E of inference and of mining under ``train.kernel: autograd``."""


@dataclass(frozen=True)
class EnergyKernel:
    """How a training step evaluates the energy network (``train.kernel``, built by ``ired.training.kernel``):
    grad_y E for the denoising term and E for the contrastive terms, both with a graph to the weights, and the
    graph-free E and grad_y E of mining. The defaults are the reference's operations (``autograd``)."""

    energy_grad: EnergyGrad = autograd_energy_grad
    energy: Energy = graph_energy
    graph_free: GraphFreeEnergy = EXACT


def build_model(cfg: RunConfig) -> EnergyMLP:
    """The energy network of a run config: d = n*n inputs and outputs (``cfg.data.n``), the rest from ``cfg.model``."""
    return EnergyMLP(cfg.data.n * cfg.data.n, cfg.model)


def count_parameters(model: nn.Module) -> int:
    """Number of values in the model's parameters."""
    return sum(p.numel() for p in model.parameters())
