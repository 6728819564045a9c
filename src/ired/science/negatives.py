"""Negative samplers for the contrastive objectives.

Every sampler returns negatives at the same level t as the positives, detached, built the same way:
a chain in level-t space, mapped to x0 space (y / sqrt(ab_t)), clamped to [-clamp, clamp], and re-noised
with the positive's own noise eps, so positive and negative differ only in their x0.

- ``mined`` (IRED): start at q_sample(y0, t, init_noise * eps); k gradient steps on E, a step kept per sample
  only if its energy falls. ``negatives.mining`` says how the steps are sized and clamped:
  ``reference`` (default, the IRED release's training-time mining): the first step is lambda_t * scale, every
  later one 2 * lambda_t * scale, and every iterate is clamped to sqrt(ab_{t_0}) * clamp with t_0 the level of
  the (micro-)batch's first sample; ``fixed`` (a deviation, ired's earlier rule): every step lambda_t * scale,
  each sample clamped with its own level, sqrt(ab_t) * clamp.
- ``langevin``: same start, k steps y <- y - lambda_t * scale * grad E + noise_scale * N(0, I), no rejection.
- ``replay`` (PCD, Du & Mordatch 2019): chains start, with probability replay_prob, from a buffer of earlier
  negatives (x0 space, re-noised to level t), otherwise from the mined start; then k Langevin steps; the
  results go back into the buffer.

A sampler gets its settings (``negatives.*``) with each call, those of the step: the curriculum of
``ired.science.schedules`` changes them over training without touching the sampler, which keeps only its state
(the replay buffer).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ired.core.run_config import NegativesConfig
from ired.science.diffusion import Schedule
from ired.science.inference import descend
from ired.science.models import EXACT, Conditioning, EnergyMLP, GraphFreeEnergy


class NegativeSampler(Protocol):
    """Draws the negatives of a batch. ``settings`` are the negatives' settings of the current step (the
    run's, or its curriculum's: ``ired.science.losses.Shaping.negatives``); a sampler keeps only its state."""

    def sample(self, model: EnergyMLP, schedule: Schedule, cond: Conditioning, y0: torch.Tensor,
               t: torch.Tensor, eps: torch.Tensor, settings: NegativesConfig) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def chain_start(
    schedule: Schedule, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, settings: NegativesConfig
) -> torch.Tensor:
    """Where a chain starts: the positive noised further, q_sample(y0, t, init_noise * eps)."""
    return schedule.q_sample(y0, t, settings.init_noise * eps)


class MinedNegatives:
    """``mined``: gradient steps on E from the chain start, each kept per sample only if its energy falls.
    ``graph_free`` evaluates E and grad_y E along the chain (the run's ``train.kernel``)."""

    def __init__(self, graph_free: GraphFreeEnergy = EXACT) -> None:
        self.graph_free = graph_free

    def sample(self, model: EnergyMLP, schedule: Schedule, cond: Conditioning, y0: torch.Tensor,
               t: torch.Tensor, eps: torch.Tensor, settings: NegativesConfig) -> torch.Tensor:
        y = self.chain(model, schedule, cond, chain_start(schedule, y0, t, eps, settings), t, settings)
        return self.negative(schedule, y, t, eps, settings)

    def chain(self, model: EnergyMLP, schedule: Schedule, cond: Conditioning, start: torch.Tensor,
              t: torch.Tensor, settings: NegativesConfig) -> torch.Tensor:
        """The chain's last point (level-t space) from ``start``: ``settings.steps`` steps of ``descend``."""
        noise_scale, reject, quirks = self.descent(settings)
        y, _ = descend(model, schedule, cond, start, t, settings.steps, settings.step_size_scale,
                       settings.clamp, noise_scale=noise_scale, reject=reject, release_quirks=quirks,
                       graph_free=self.graph_free)
        return y

    def descent(self, settings: NegativesConfig) -> tuple[float, bool, bool]:
        """(noise_scale, reject, release_quirks) of the chain's steps."""
        return 0.0, True, settings.mining == "reference"

    @staticmethod
    def negative(
        schedule: Schedule, y: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, settings: NegativesConfig
    ) -> torch.Tensor:
        """The chain's point y mapped to x0 space, clamped, re-noised with the positive's noise ``eps``."""
        x0 = (y / schedule.scale(t)).clamp(-settings.clamp, settings.clamp)
        return schedule.q_sample(x0, t, eps).detach()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class LangevinNegatives(MinedNegatives):
    """``langevin``: noisy gradient steps from the chain start, none rejected."""

    def descent(self, settings: NegativesConfig) -> tuple[float, bool, bool]:
        return settings.noise_scale, False, False


class ReplayNegatives(LangevinNegatives):
    """Persistent chains: a ring buffer of ``buffer_size`` x0-space negatives, filled as training goes."""

    def __init__(self, buffer_size: int, graph_free: GraphFreeEnergy = EXACT) -> None:
        super().__init__(graph_free)
        self.buffer_size = buffer_size
        self.buffer: torch.Tensor | None = None  # (R, d), x0 space
        self.filled = 0
        self.cursor = 0

    def sample(self, model: EnergyMLP, schedule: Schedule, cond: Conditioning, y0: torch.Tensor,
               t: torch.Tensor, eps: torch.Tensor, settings: NegativesConfig) -> torch.Tensor:
        start = chain_start(schedule, y0, t, eps, settings)
        B = y0.shape[0]
        if self.filled > 0 and settings.replay_prob > 0:
            use = torch.rand(B, device=y0.device) < settings.replay_prob  # (B,)
            idx = torch.randint(0, self.filled, (B,), device=y0.device)
            assert self.buffer is not None
            replayed = schedule.q_sample(self.buffer[idx].to(y0.device), t, eps)
            start = torch.where(use.unsqueeze(-1), replayed, start)
        y = self.chain(model, schedule, cond, start, t, settings)
        self._push((y / schedule.scale(t)).clamp(-settings.clamp, settings.clamp).detach())
        return self.negative(schedule, y, t, eps, settings)

    def _push(self, x0: torch.Tensor) -> None:
        R = self.buffer_size
        if self.buffer is None:
            self.buffer = torch.zeros(R, x0.shape[1])
        elif self.buffer.shape[0] != R:
            self._resize(R)
        assert self.buffer is not None
        x0 = x0[-R:].cpu()
        idx = (self.cursor + torch.arange(x0.shape[0])) % R
        self.buffer[idx] = x0
        self.cursor = int((self.cursor + x0.shape[0]) % R)
        self.filled = min(R, self.filled + x0.shape[0])

    def _resize(self, R: int) -> None:
        """Keep the newest min(filled, R) chains, oldest first, in a buffer of size R (an OOM fallback shrinks
        it)."""
        assert self.buffer is not None
        old = self.buffer.shape[0]
        kept = min(self.filled, R)
        order = (self.cursor - kept + torch.arange(kept)) % old
        resized = torch.zeros(R, self.buffer.shape[1])
        resized[:kept] = self.buffer[order]
        self.buffer, self.filled, self.cursor = resized, kept, kept % R

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer, "filled": self.filled, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer = state.get("buffer")
        self.filled, self.cursor = int(state.get("filled", 0)), int(state.get("cursor", 0))
        if self.buffer is not None and self.buffer.shape[0] != self.buffer_size:
            self._resize(self.buffer_size)


def make_sampler(cfg: NegativesConfig, graph_free: GraphFreeEnergy = EXACT) -> NegativeSampler:
    """The sampler of ``negatives.name`` (its settings come with each call), its chains evaluated by
    ``graph_free``."""
    if cfg.name == "replay":
        return ReplayNegatives(cfg.buffer_size, graph_free)
    return {"mined": MinedNegatives, "langevin": LangevinNegatives}[cfg.name](graph_free)
