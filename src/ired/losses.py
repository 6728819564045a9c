"""Training objectives: the denoising loss and the contrastive shaping terms.

Denoising (all objectives): L_denoise = mean over samples and coordinates of (grad_y E(x, y_t, t) - eps)^2.

Contrastive terms on d = E_pos - E_neg (per sample; E_pos is the energy of the denoising term's own y_t):

- ``softplus`` (IRED): softplus(d / T). dL/dd = sigmoid(d / T) / T, largest value 1 / T.
- ``cd`` (contrastive divergence sign): d. dL/dd = 1 everywhere: it never saturates, and it is unbounded below.
- ``hinge``: relu(margin + d). dL/dd = 1 while the margin is violated, 0 once E_neg >= E_pos + margin.

``frac_sat`` is the share of (windowed) samples whose contrastive-loss gradient dL/dd is below
``sat_threshold`` (1% by default) of its largest value: those samples teach the energy landscape nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ired.config import ObjectiveConfig


@dataclass
class ContrastiveOutput:
    loss: torch.Tensor  # scalar, unweighted contrastive loss over the windowed samples
    frac_sat: float
    margin: float  # mean(E_neg - E_pos) over the windowed samples
    n_active: int


def denoise_loss(pred_eps: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample denoising MSE, shape (B,)."""
    return (pred_eps - eps).pow(2).mean(-1)


def timestep_window(cfg: ObjectiveConfig, t: torch.Tensor) -> torch.Tensor:
    """Boolean mask (B,) of samples whose t lies in [t_min, t_max]."""
    mask = t >= cfg.t_min
    if cfg.t_max is not None:
        mask &= t <= cfg.t_max
    return mask


def contrastive_loss(
    cfg: ObjectiveConfig,
    e_pos: torch.Tensor,
    e_neg: torch.Tensor,
    t: torch.Tensor,
    temperature: float | None = None,
    margin: float | None = None,
) -> ContrastiveOutput:
    """The contrastive term of ``cfg.name`` over the samples in the timestep window.

    ``temperature`` and ``margin`` override the config's values (set by ``ired.schedules``).
    """
    margin = cfg.margin if margin is None else margin
    mask = timestep_window(cfg, t)
    n_active = int(mask.sum())
    if n_active == 0:
        zero = e_pos.sum() * 0.0
        return ContrastiveOutput(zero, float("nan"), float("nan"), 0)
    diff = (e_pos - e_neg)[mask]  # (B_active,)
    if cfg.name == "softplus":
        T = temperature if temperature is not None else cfg.temperature
        per_sample = F.softplus(diff / T)
        relative_grad = torch.sigmoid(diff.detach() / T)  # dL/dd divided by its maximum 1/T
    elif cfg.name == "cd":
        per_sample = diff
        relative_grad = torch.ones_like(diff)
    elif cfg.name == "hinge":
        per_sample = F.relu(margin + diff)
        relative_grad = (margin + diff.detach() > 0).float()
    else:
        raise ValueError(f"objective.name={cfg.name!r} has no contrastive term")
    frac_sat = float((relative_grad < cfg.sat_threshold).float().mean())
    return ContrastiveOutput(per_sample.mean(), frac_sat, float((-diff.detach()).mean()), n_active)


def energy_scale_penalty(e_pos: torch.Tensor, e_neg: torch.Tensor | None) -> torch.Tensor:
    """mean(E_pos^2 + E_neg^2): keeps energies O(1) so the contrastive term cannot win by inflating the scale."""
    penalty = e_pos.pow(2).mean()
    if e_neg is not None:
        penalty = penalty + e_neg.pow(2).mean()
    return penalty
