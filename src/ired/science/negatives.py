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
"""

from __future__ import annotations

from typing import Protocol

import torch

from ired.core.run_config import NegativesConfig
from ired.science.diffusion import Schedule
from ired.science.inference import descend
from ired.science.models import Conditioning, EnergyMLP


class NegativeSampler(Protocol):
    def sample(
        self, model: EnergyMLP, schedule: Schedule, cond: Conditioning, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _to_negative(schedule: Schedule, y: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, clamp: float) -> torch.Tensor:
    x0 = (y / schedule.scale(t)).clamp(-clamp, clamp)
    return schedule.q_sample(x0, t, eps).detach()


class MinedNegatives:
    def __init__(self, cfg: NegativesConfig) -> None:
        self.cfg = cfg

    def start(self, schedule: Schedule, y0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return schedule.q_sample(y0, t, self.cfg.init_noise * eps)

    def sample(self, model, schedule, cond, y0, t, eps):  # type: ignore[no-untyped-def]
        y, _ = descend(
            model, schedule, cond, self.start(schedule, y0, t, eps), t, self.cfg.steps, self.cfg.step_size_scale,
            self.cfg.clamp, release_quirks=self.cfg.mining == "reference",
        )
        return _to_negative(schedule, y, t, eps, self.cfg.clamp)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class LangevinNegatives(MinedNegatives):
    def sample(self, model, schedule, cond, y0, t, eps):  # type: ignore[no-untyped-def]
        y, _ = descend(
            model, schedule, cond, self.start(schedule, y0, t, eps), t, self.cfg.steps, self.cfg.step_size_scale,
            self.cfg.clamp, noise_scale=self.cfg.noise_scale, reject=False,
        )
        return _to_negative(schedule, y, t, eps, self.cfg.clamp)


class ReplayNegatives(MinedNegatives):
    """Persistent chains: a ring buffer of x0-space negatives, filled as training goes."""

    def __init__(self, cfg: NegativesConfig) -> None:
        super().__init__(cfg)
        self.buffer: torch.Tensor | None = None  # (R, d), x0 space
        self.filled = 0
        self.cursor = 0

    def sample(self, model, schedule, cond, y0, t, eps):  # type: ignore[no-untyped-def]
        start = self.start(schedule, y0, t, eps)
        B = y0.shape[0]
        if self.filled > 0 and self.cfg.replay_prob > 0:
            use = torch.rand(B, device=y0.device) < self.cfg.replay_prob  # (B,)
            idx = torch.randint(0, self.filled, (B,), device=y0.device)
            assert self.buffer is not None
            replayed = schedule.q_sample(self.buffer[idx].to(y0.device), t, eps)
            start = torch.where(use.unsqueeze(-1), replayed, start)
        y, _ = descend(
            model, schedule, cond, start, t, self.cfg.steps, self.cfg.step_size_scale, self.cfg.clamp,
            noise_scale=self.cfg.noise_scale, reject=False,
        )
        self._push((y / schedule.scale(t)).clamp(-self.cfg.clamp, self.cfg.clamp).detach())
        return _to_negative(schedule, y, t, eps, self.cfg.clamp)

    def _push(self, x0: torch.Tensor) -> None:
        R = self.cfg.buffer_size
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
        """Keep the newest min(filled, R) chains, oldest first, in a buffer of size R (an OOM fallback shrinks it)."""
        assert self.buffer is not None
        old = self.buffer.shape[0]
        kept = min(self.filled, R)
        order = (self.cursor - kept + torch.arange(kept)) % old
        resized = torch.zeros(R, self.buffer.shape[1])
        resized[:kept] = self.buffer[order]
        self.buffer, self.filled, self.cursor = resized, kept, kept % R

    def state_dict(self) -> dict:
        return {"buffer": self.buffer, "filled": self.filled, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.buffer = state.get("buffer")
        self.filled, self.cursor = int(state.get("filled", 0)), int(state.get("cursor", 0))
        if self.buffer is not None and self.buffer.shape[0] != self.cfg.buffer_size:
            self._resize(self.cfg.buffer_size)


def make_sampler(cfg: NegativesConfig) -> MinedNegatives:
    return {"mined": MinedNegatives, "langevin": LangevinNegatives, "replay": ReplayNegatives}[cfg.name](cfg)
