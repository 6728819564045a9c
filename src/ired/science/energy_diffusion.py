"""The science as one object: the energy model E(x, y, t) with its diffusion schedule, owning its loss.

:class:`EnergyDiffusion` holds the energy model, its :class:`~ired.science.diffusion.Schedule`, the objective,
the negative sampler of the contrastive terms and how training evaluates E and grad_y E (``train.kernel``). A training
step is a batch and its shaping::

    batch = diffusion.noised(problems)   # levels t and noises drawn for the problems
    out = diffusion.loss(batch, shaping)  # shaping = ContrastiveController.at(step) (ired.science.schedules)

loss_total = L_denoise + w * L_contrastive + energy_reg * mean(E_pos^2 + E_neg^2), with the terms of
:mod:`ired.science.losses`; w, the temperature, the margin and the negatives' settings are the step's
(:class:`~ired.science.losses.Shaping`), passed in with the batch: nothing of the curriculum is stored here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ired.core.run_config import ObjectiveConfig, RunConfig
from ired.science.data import Problems
from ired.science.diffusion import Schedule
from ired.science.losses import (
    Shaping,
    TrainingLoss,
    contrastive_loss,
    denoise_loss,
    energy_scale_penalty,
)
from ired.science.models import Conditioning, EnergyKernel, EnergyMLP, build_model
from ired.science.negatives import NegativeSampler, make_sampler


@dataclass(frozen=True)
class TrainingBatch:
    """Problems ``x`` (B, d) with targets ``y0`` (B, d) at levels ``t`` (B,), noised by ``eps`` (B, d) for the
    denoising term; ``eps_contrastive`` (B, d): the contrastive positives' and negatives' own noise
    (``objective.contrastive_noise=fresh``, the reference), None where they reuse ``eps`` (``shared``)."""

    x: torch.Tensor
    y0: torch.Tensor
    t: torch.Tensor
    eps: torch.Tensor
    eps_contrastive: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def micro_batches(self, size: int) -> list[TrainingBatch]:
        """Consecutive slices of ``size`` samples (``size`` divides the batch: ``train.micro_batch``)."""
        return [self._slice(slice(start, start + size)) for start in range(0, len(self), size)]

    def _slice(self, part: slice) -> TrainingBatch:
        eps_c = None if self.eps_contrastive is None else self.eps_contrastive[part]
        return TrainingBatch(self.x[part], self.y0[part], self.t[part], self.eps[part], eps_c)


@dataclass(frozen=True)
class Noise:
    """A training step's levels ``t`` (B,), denoising noise ``eps`` (B, d) and contrastive noise (B, d) or None."""

    t: torch.Tensor
    eps: torch.Tensor
    eps_contrastive: torch.Tensor | None


class EnergyDiffusion:
    """The energy model with its schedule: draws a training batch's levels and noises, computes its loss."""

    def __init__(
        self,
        model: EnergyMLP,
        schedule: Schedule,
        objective: ObjectiveConfig,
        sampler: NegativeSampler,
        kernel: EnergyKernel | None = None,
    ) -> None:
        self.model = model
        self.schedule = schedule
        self.objective = objective
        self.sampler = sampler
        # E and grad_y E with a graph to the weights, and mining's without (train.kernel: ired.training.kernel)
        self.kernel = kernel or EnergyKernel()

    @classmethod
    def for_run(cls, cfg: RunConfig, device: torch.device, kernel: EnergyKernel) -> EnergyDiffusion:
        """The run's schedule, model (initialised from torch's generator) and sampler, on ``device``."""
        schedule = Schedule(cfg.diffusion.steps, cfg.diffusion.cosine_s).to(device)
        model = build_model(cfg).to(device)
        return cls(model, schedule, cfg.objective, make_sampler(cfg.negatives, kernel.graph_free), kernel)

    def draw_noise(self, batch: int, d: int) -> Noise:
        """The levels and noises of a training step for ``batch`` problems of ``d`` values, on the CPU, drawn from
        torch's generator in this order: t, eps, then the contrastive noise (``objective.contrastive_noise=fresh``
        only). Nothing else draws from that generator in a step, so another thread may draw them meanwhile."""
        t = torch.randint(0, self.schedule.steps, (batch,))
        eps = torch.randn(batch, d)
        eps_contrastive = None
        if self.objective.contrastive and self.objective.contrastive_noise == "fresh":
            eps_contrastive = torch.randn(batch, d)
        return Noise(t, eps, eps_contrastive)

    def noised(self, problems: Problems, noise: Noise | None = None) -> TrainingBatch:
        """The problems with the levels and noises of a training step (``noise``: :meth:`draw_noise`'s, drawn now
        when not given), on the problems' device."""
        B, d = problems.A_inv.shape
        device = problems.A_inv.device
        noise = noise or self.draw_noise(B, d)
        eps_contrastive = None if noise.eps_contrastive is None else noise.eps_contrastive.to(device)
        return TrainingBatch(problems.A, problems.A_inv, noise.t.to(device), noise.eps.to(device), eps_contrastive)

    def negatives(
        self, cond: Conditioning, batch: TrainingBatch, eps: torch.Tensor, shaping: Shaping
    ) -> torch.Tensor:
        """Detached negatives of the batch at its levels, re-noised with ``eps``, in the step's settings."""
        return self.sampler.sample(
            self.model, self.schedule, cond.detach(), batch.y0, batch.t, eps, shaping.negatives
        )

    def loss(self, batch: TrainingBatch, shaping: Shaping) -> TrainingLoss:
        """Denoising + contrastive + regulariser of ``batch`` under the step's ``shaping``.

        A contrastive objective compares the energy of the positives with that of negatives drawn by the
        sampler: with ``eps_contrastive`` both are noised by it, else (``shared``) the denoising term's y_t
        and energy serve.
        """
        model, schedule, objective, t = self.model, self.schedule, self.objective, batch.t
        cond = model.condition(batch.x, t)
        energy = self.kernel.energy
        y_t = schedule.q_sample(batch.y0, t, batch.eps)
        e_pos, pred = self.kernel.energy_grad(model, cond, y_t)  # (B,), (B, d)
        l_denoise = denoise_loss(pred, batch.eps).mean()
        loss = l_denoise
        stats: dict[str, float | None] = {
            "train_denoise_mse": float(l_denoise.detach()),
            "E_pos": float(e_pos.detach().mean()),
            "gradE_norm": float(pred.detach().norm(dim=-1).mean()),
            "pred_mean": float(pred.detach().mean()),
            "pred_std": float(pred.detach().std()),
            "target_mean": float(batch.eps.mean()),
            "target_std": float(batch.eps.std()),
        }
        e_neg = None
        if objective.contrastive:
            eps_contrastive = batch.eps
            if batch.eps_contrastive is not None:  # fresh (the reference): y+_t from their own noise
                eps_contrastive = batch.eps_contrastive
                e_pos = energy(model, cond, schedule.q_sample(batch.y0, t, eps_contrastive))
                stats["E_pos"] = float(e_pos.detach().mean())
            e_neg = energy(model, cond, self.negatives(cond, batch, eps_contrastive, shaping))
            out = contrastive_loss(objective, e_pos, e_neg, t, shaping.temperature, shaping.margin)
            loss = loss + shaping.weight * out.loss
            stats.update(
                loss_contrastive=float(out.loss.detach()) if out.n_active else None,
                E_neg=float(e_neg.detach().mean()),
                margin=out.margin if out.n_active else None,
                frac_sat=out.frac_sat if out.n_active else None,
            )
        if objective.energy_reg > 0:
            loss = loss + objective.energy_reg * energy_scale_penalty(e_pos, e_neg)
        stats["loss_total"] = float(loss.detach())
        return TrainingLoss(loss, stats)
