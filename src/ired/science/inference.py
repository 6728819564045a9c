"""IRED's annealed energy optimisation: from y_T ~ N(0, I) down the diffusion levels to an x0 estimate.

At each level t = T-1 .. 0:
1. denoising step: eps_hat = grad_y E(x, y, t); x0 = clamp((y - sqrt(1-ab_t) eps_hat) / sqrt(ab_t)); y = sqrt(ab_t) x0;
2. K gradient steps on E(x, ., t) with step lambda_t * scale, kept per sample only when the energy falls, iterates
   clamped to sqrt(ab_t) * clamp;
3. rescale to the next level: y = sqrt(ab_{t-1}) * y / sqrt(ab_t).
The answer is the final x0 estimate y / sqrt(ab_0).

``reference_quirks=True`` reproduces the IRED release on purpose (the `reference` protocol): after the first
inner step the step size doubles, and the output is sqrt(ab_0) * x0 (about 0.986 x0) instead of x0.

:func:`descend` (step 2, gradient descent on E at one level) is also how training mines its negatives
(:mod:`ired.science.negatives`): the sampler needs nothing from training, training reuses the sampler's descent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from ired.science.compiled import inference_graph_free
from ired.science.diffusion import Schedule
from ired.science.models import EXACT, Conditioning, EnergyMLP, GraphFreeEnergy


@dataclass(frozen=True)
class InferenceSettings:
    steps_per_level: int = 5
    step_size_scale: float = 1.0
    clamp: float = 2.0
    reference_quirks: bool = False
    kernel: Literal["exact", "compiled"] = "exact"  # inference.kernel: how E and grad_y E are evaluated

    def graph_free(self) -> GraphFreeEnergy:
        """``exact``: written out, autograd's numbers bit for bit; ``compiled``: the same, compiled."""
        return inference_graph_free() if self.kernel == "compiled" else EXACT


@dataclass
class InferenceStats:
    """Per-run statistics of the optimisation path (sums over problems; see ``summary``)."""

    problems: int = 0
    rejected_steps: float = 0.0
    inner_steps: int = 0
    monotone_transitions: float = 0.0
    transitions: int = 0

    def summary(self) -> dict[str, float | None]:
        return {
            "rejected_frac": self.rejected_steps / self.inner_steps if self.inner_steps else None,
            "energy_monotone_frac": self.monotone_transitions / self.transitions if self.transitions else None,
        }


_SKIP_UNUSED_GRADIENT = [True]


@contextlib.contextmanager
def unused_gradients() -> Iterator[None]:
    """Within it, :func:`descend` also computes its last step's gradient, which it never uses (as ired did before
    it skipped it): the same numbers, the work the FLOP floor of ``python -m ired.bench`` counts."""
    _SKIP_UNUSED_GRADIENT[0] = False
    try:
        yield
    finally:
        _SKIP_UNUSED_GRADIENT[0] = True


def descend(
    model: EnergyMLP,
    schedule: Schedule,
    cond: Conditioning,
    y: torch.Tensor,
    t: torch.Tensor,
    steps: int,
    step_scale: float,
    clamp: float,
    noise_scale: float = 0.0,
    reject: bool = True,
    release_quirks: bool = False,
    graph_free: GraphFreeEnergy = EXACT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k steps of (noisy) gradient descent on E(x, ., t) in level-t space; ``cond`` = model.condition(x, t), detached.

    Returns the final iterate and the per-sample share of rejected steps (B,). Each step evaluates E and its
    gradient once at the candidate point; with rejection, a sample whose energy rose keeps its previous point,
    energy and gradient, so no extra forward pass is needed for the check; the last step computes only the
    energy (its gradient is never used), and no step builds an autograd graph. ``release_quirks`` reproduces the
    IRED release's training-time mining: steps after the first are twice as long, and the clamp uses the first
    sample's level for every sample. ``graph_free`` evaluates E and grad_y E (training's ``train.kernel``).
    """
    lam = schedule.at(schedule.step_size, t) * step_scale  # (B, 1)
    bound = schedule.scale(t[:1] if release_quirks else t) * clamp  # (B, 1), or (1, 1) with the quirks
    rejected = torch.zeros(y.shape[0], device=y.device)
    if steps == 0:
        return y.detach(), rejected
    energy, grad = graph_free.energy_and_grad(model, cond, y)
    y = y.detach()
    for i in range(steps):
        candidate = y - (2 * lam if release_quirks and i > 0 else lam) * grad
        if noise_scale > 0:
            candidate = candidate + noise_scale * torch.randn_like(candidate)
        candidate = torch.maximum(torch.minimum(candidate, bound), -bound)
        last = i == steps - 1 and _SKIP_UNUSED_GRADIENT[0]  # the last gradient is never used: its energy is enough
        if last:
            new_energy = graph_free.energy(model, cond, candidate)
        else:
            new_energy, new_grad = graph_free.energy_and_grad(model, cond, candidate)
        if reject:
            bad = new_energy > energy  # (B,)
            rejected += bad.float()
            keep = bad.unsqueeze(-1)
            y = torch.where(keep, y, candidate)
            if not last:
                grad = torch.where(keep, grad, new_grad)
            energy = torch.where(bad, energy, new_energy)
        else:
            y, energy = candidate, new_energy
            if not last:
                grad = new_grad
    return y, rejected / steps


def _quirky_descend(
    model: EnergyMLP, schedule: Schedule, cond: Conditioning, y: torch.Tensor, t: torch.Tensor, steps: int,
    clamp: float, graph_free: GraphFreeEnergy,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's inner loop: step 1 at lambda_t, then at 2 * lambda_t."""
    rejected = torch.zeros(y.shape[0], device=y.device)
    for i in range(steps):
        y, r = descend(model, schedule, cond, y, t, 1, 1.0 if i == 0 else 2.0, clamp, graph_free=graph_free)
        rejected += r
    return y, rejected / max(steps, 1)


@torch.no_grad()
def annealed_inference(
    model: EnergyMLP,
    schedule: Schedule,
    x: torch.Tensor,
    settings: InferenceSettings,
    generator: torch.Generator,
    stats: InferenceStats | None = None,
    track_energy: bool = False,
) -> torch.Tensor:
    """Solve the problems ``x`` (B, d); returns the x0 estimates (B, d).

    The start noise is drawn on the CPU from ``generator`` so results do not depend on the device or on chunking
    done by the caller with the same generator sequence. With ``track_energy`` the stats record, per level
    transition, whether the t=0 energy of the running x0 estimate did not increase.
    """
    B, d = x.shape
    graph_free = settings.graph_free()
    y = torch.randn(B, d, generator=generator).to(x.device)
    x0 = y
    previous_energy: torch.Tensor | None = None
    for level in reversed(range(schedule.steps)):
        t = torch.full((B,), level, device=x.device, dtype=torch.long)
        cond = model.condition(x, t)
        _, eps_hat = graph_free.energy_and_grad(model, cond, y)
        x0 = schedule.predict_x0(y, t, eps_hat).clamp(-settings.clamp, settings.clamp)
        y = schedule.scale(t) * x0
        if settings.steps_per_level > 0:
            if settings.reference_quirks:
                y, rejected = _quirky_descend(model, schedule, cond, y, t, settings.steps_per_level, settings.clamp,
                                              graph_free)
            else:
                y, rejected = descend(model, schedule, cond, y, t, settings.steps_per_level, settings.step_size_scale,
                                      settings.clamp, graph_free=graph_free)
            if stats is not None:
                stats.rejected_steps += float(rejected.sum()) * settings.steps_per_level
                stats.inner_steps += B * settings.steps_per_level
        x0 = y / schedule.scale(t)
        if track_energy and stats is not None:
            energy = model(x, x0, torch.zeros_like(t))
            if previous_energy is not None:
                stats.monotone_transitions += float((energy <= previous_energy).float().sum())
                stats.transitions += B
            previous_energy = energy
        if level > 0:
            y = schedule.scale(t - 1) * x0
    if stats is not None:
        stats.problems += B
    if settings.reference_quirks:
        return schedule.scale(torch.zeros(B, device=x.device, dtype=torch.long)) * x0
    return x0
