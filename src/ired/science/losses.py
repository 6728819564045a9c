"""Training objectives: the terms of a training step's loss (assembled by ``ired.science.energy_diffusion``).

loss_total = L_denoise + w * L_contrastive + energy_reg * mean(E_pos^2 + E_neg^2)

Denoising (all objectives): L_denoise = mean over samples and coordinates of (grad_y E(x, y_t, t) - eps)^2.

Contrastive terms on d = E_pos - E_neg (per sample), one entry each in :data:`CONTRASTIVE_TERMS`:

- ``softplus`` (IRED): softplus(d / T). dL/dd = sigmoid(d / T) / T, largest value 1 / T.
- ``cd`` (contrastive divergence sign): d. dL/dd = 1 everywhere: it never saturates, and it is unbounded below.
- ``hinge``: relu(margin + d). dL/dd = 1 while the margin is violated, 0 once E_neg >= E_pos + margin.

``frac_sat`` is the share of (windowed) samples whose contrastive-loss gradient dL/dd is below
``sat_threshold`` (1% by default) of its largest value: those samples teach the energy landscape nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ired.core.run_config import NegativesConfig, ObjectiveConfig


@dataclass
class ContrastiveOutput:
    loss: torch.Tensor  # scalar, unweighted contrastive loss over the windowed samples
    frac_sat: float
    margin: float  # mean(E_neg - E_pos) over the windowed samples
    n_active: int


@dataclass(frozen=True)
class ContrastiveTerm:
    """One contrastive objective on d = E_pos - E_neg.

    ``per_sample(d, temperature, margin)`` returns the loss of each sample and its gradient dL/dd divided by the
    largest value dL/dd can take (1 where the sample still teaches, near 0 where it is saturated).
    ``temperature``: the term uses ``objective.temperature`` (logged as the `temperature` column and adapted by
    ``objective.adaptive_temperature``).
    """

    per_sample: Callable[[torch.Tensor, float, float], tuple[torch.Tensor, torch.Tensor]]
    temperature: bool = False


def _softplus(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return F.softplus(diff / temperature), torch.sigmoid(diff.detach() / temperature)  # dL/dd over its max 1/T


def _cd(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return diff, torch.ones_like(diff)


def _hinge(diff: torch.Tensor, temperature: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    return F.relu(margin + diff), (margin + diff.detach() > 0).float()


CONTRASTIVE_TERMS: dict[str, ContrastiveTerm] = {
    "softplus": ContrastiveTerm(_softplus, temperature=True),
    "cd": ContrastiveTerm(_cd),
    "hinge": ContrastiveTerm(_hinge),
}
"""The contrastive term of each objective of ``ired.core.run_config.CONTRASTIVE_OBJECTIVES`` (the same names)."""


def uses_temperature(objective: str) -> bool:
    """Does the objective's contrastive term have a temperature (logged, adapted)?"""
    term = CONTRASTIVE_TERMS.get(objective)
    return term is not None and term.temperature


@dataclass(frozen=True)
class Shaping:
    """The contrastive term's settings at one optimiser step (``ired.science.schedules.ContrastiveController.at``):
    what the curriculum of the run says for that step, passed to the loss with its batch."""

    weight: float  # w of loss_total; 0 before objective.start_step and for `denoise`
    temperature: float
    margin: float
    negatives: NegativesConfig  # the negative sampler's settings (the negatives curriculum's at this step)


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

    ``temperature`` and ``margin`` override the config's values (set by ``ired.science.schedules``).
    """
    term = CONTRASTIVE_TERMS.get(cfg.name)
    if term is None:
        raise ValueError(f"objective.name={cfg.name!r} has no contrastive term")
    margin = cfg.margin if margin is None else margin
    T = cfg.temperature if temperature is None else temperature
    mask = timestep_window(cfg, t)
    n_active = int(mask.sum())
    if n_active == 0:
        zero = e_pos.sum() * 0.0
        return ContrastiveOutput(zero, float("nan"), float("nan"), 0)
    diff = (e_pos - e_neg)[mask]  # (B_active,)
    per_sample, relative_grad = term.per_sample(diff, T, margin)
    frac_sat = float((relative_grad < cfg.sat_threshold).float().mean())
    return ContrastiveOutput(per_sample.mean(), frac_sat, float((-diff.detach()).mean()), n_active)


def energy_scale_penalty(e_pos: torch.Tensor, e_neg: torch.Tensor | None) -> torch.Tensor:
    """mean(E_pos^2 + E_neg^2): keeps energies O(1) so the contrastive term cannot win by inflating the scale."""
    penalty = e_pos.pow(2).mean()
    if e_neg is not None:
        penalty = penalty + e_neg.pow(2).mean()
    return penalty


@dataclass
class TrainingLoss:
    """The loss of one (micro-)batch: ``total`` keeps its graph to the weights; ``stats`` are the training columns
    of the metrics contract it determines (``None`` where a term does not apply)."""

    total: torch.Tensor
    stats: dict[str, float | None]
