"""The energy network E(x, y, t) of IRED and its gradient, the denoiser.

An MLP on concat[x, y] (x = A, y = a candidate A^-1, both flattened): Linear(2d -> W) then depth-1 Linear(W -> W)
layers, swish activations; the time step enters through a sinusoidal embedding and an MLP, and modulates every
hidden layer after the first FiLM-style, with the activation AFTER the modulation as in the IRED release:
h = swish(fc(h) * (gain + 1) + bias). Two heads:

- ``vector`` (IRED release): fc4: W -> d, E = ||fc4(h)||^2 >= 0.
- ``scalar`` (IRED paper, Table 8): fc4: W -> 1, E = fc4(h), no sign constraint.

With the defaults (d = 400, W = 512, depth 3, time_dim 128) the model has about 1.44M parameters.
The denoiser is eps_hat = grad_y E(x, y_t, t), taken with autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ired.config import ModelConfig, RunConfig


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

    def detach(self) -> "Conditioning":
        return Conditioning(self.x_features.detach(), [(g.detach(), b.detach()) for g, b in self.film])


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
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, cfg.time_dim), nn.GELU(), nn.Linear(cfg.time_dim, cfg.time_dim))
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
        h = F.silu(cond.x_features + self.fc_y(y))  # (B, W)
        for layer, (gain, bias) in zip(self.hidden, cond.film):
            h = F.silu(torch.addcmul(bias, layer(h), gain))  # silu(W h * (gain + 1) + bias), the release's order
        out = self.head(h)  # (B, d) or (B, 1)
        if self.head_kind == "vector":
            return out.pow(2).sum(-1)
        return out.squeeze(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.energy(self.condition(x, t), y)


def energy_and_grad(
    model: EnergyMLP, cond: Conditioning, y: torch.Tensor, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies (B,) and grad_y E (B, d) for the conditioning ``cond`` = model.condition(x, t).

    ``create_graph=True`` keeps the graph of the gradient so a loss on it can be backpropagated to the weights
    (double backprop, as in training). Otherwise ``y`` is treated as a leaf and both outputs are detached; pass a
    detached ``cond`` then, so no graph to the weights is built.
    """
    with torch.enable_grad():
        if not create_graph:
            y = y.detach().requires_grad_(True)
        elif not y.requires_grad:
            y = y.requires_grad_(True)
        energy = model.energy(cond, y)
        (grad,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
    if not create_graph:
        return energy.detach(), grad.detach()
    return energy, grad


def build_model(cfg: RunConfig) -> EnergyMLP:
    """The energy network of a run config: d = n*n inputs and outputs (``cfg.data.n``), the rest from ``cfg.model``."""
    return EnergyMLP(cfg.data.n * cfg.data.n, cfg.model)


def count_parameters(model: nn.Module) -> int:
    """Number of values in the model's parameters."""
    return sum(p.numel() for p in model.parameters())
