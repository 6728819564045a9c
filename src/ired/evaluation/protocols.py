"""Named, versioned evaluation protocols. Bump a version whenever its numbers could change.

- ``current`` (v1): our clean annealed inference with the run's ``inference`` settings, start noise seeded by
  ``inference.seed``, on a fixed seeded split; metric ``task_mse``.
- ``reference`` (v1): the IRED release's inference, quirks included on purpose (step size doubles after the
  first inner step, output sqrt(ab_0) * x0), 5 inner steps, lambda_t, clamp 2; metric ``task_mse``. Unlike the
  release it runs on the same fixed split, so the two protocols differ only in the inference code.
- ``denoise`` (v1): the training loss's definition on held-out problems, (grad_y E - eps)^2 with t cycling over
  the levels and seeded eps; metric ``denoise_mse``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ired.core.run_config import RunConfig
from ired.science.data import Problems
from ired.science.diffusion import Schedule
from ired.science.inference import InferenceSettings, InferenceStats, annealed_inference
from ired.science.losses import denoise_loss
from ired.science.models import EnergyMLP, energy_and_grad

DENOISE_SEED = 7


ProtocolRun = Callable[[EnergyMLP, Schedule, Problems, RunConfig, torch.device], dict[str, float | None]]
"""What a protocol runs: (model, schedule, problems, the run's config, device) -> its metric and extras."""


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    metric: str
    description: str
    run: ProtocolRun


def _chunks(problems: Problems, size: int) -> Iterator[Problems]:
    for start in range(0, len(problems), size):
        yield problems.slice(start, start + size)


def run_inference(
    model: EnergyMLP,
    schedule: Schedule,
    problems: Problems,
    settings: InferenceSettings,
    seed: int,
    chunk: int,
    device: torch.device,
    track_energy: bool = False,
) -> dict[str, float | None]:
    """Task MSE of annealed inference on ``problems`` plus path statistics."""
    generator = torch.Generator().manual_seed(seed)
    stats = InferenceStats()
    total = 0.0
    for part in _chunks(problems, chunk):
        part = part.to(device)
        pred = annealed_inference(model, schedule, part.A, settings, generator, stats, track_energy)
        total += float((pred - part.A_inv).pow(2).mean(-1).sum())
    return {"task_mse": total / len(problems), **stats.summary()}


def current_settings(cfg: RunConfig, steps_per_level: int | None = None) -> InferenceSettings:
    inf = cfg.inference
    return InferenceSettings(
        steps_per_level=inf.steps_per_level if steps_per_level is None else steps_per_level,
        step_size_scale=inf.step_size_scale,
        clamp=inf.clamp,
        kernel=inf.kernel,
    )


REFERENCE_SETTINGS = InferenceSettings(steps_per_level=5, step_size_scale=1.0, clamp=2.0, reference_quirks=True)


def _current(
    model: EnergyMLP, schedule: Schedule, problems: Problems, cfg: RunConfig, device: torch.device
) -> dict[str, float | None]:
    return run_inference(
        model, schedule, problems, current_settings(cfg), cfg.inference.seed, cfg.inference.batch_size, device
    )


def _reference(
    model: EnergyMLP, schedule: Schedule, problems: Problems, cfg: RunConfig, device: torch.device
) -> dict[str, float | None]:
    return run_inference(
        model, schedule, problems, REFERENCE_SETTINGS, cfg.inference.seed, cfg.inference.batch_size, device
    )


def denoise_mse(model: EnergyMLP, schedule: Schedule, problems: Problems, chunk: int, device: torch.device) -> float:
    generator = torch.Generator().manual_seed(DENOISE_SEED)
    total = 0.0
    offset = 0
    for part in _chunks(problems, chunk):
        B, d = part.A.shape
        t = (torch.arange(offset, offset + B) % schedule.steps).to(device)
        eps = torch.randn(B, d, generator=generator).to(device)
        part = part.to(device)
        y_t = schedule.q_sample(part.A_inv, t, eps)
        with torch.no_grad():
            cond = model.condition(part.A, t)
        _, pred = energy_and_grad(model, cond, y_t)
        total += float(denoise_loss(pred, eps).sum())
        offset += B
    return total / len(problems)


def _denoise(
    model: EnergyMLP, schedule: Schedule, problems: Problems, cfg: RunConfig, device: torch.device
) -> dict[str, float | None]:
    return {"denoise_mse": denoise_mse(model, schedule, problems, cfg.inference.batch_size, device)}


PROTOCOLS: dict[str, Protocol] = {
    "current": Protocol("current", 1, "task_mse", "clean annealed inference, run's inference settings", _current),
    "reference": Protocol("reference", 1, "task_mse", "IRED release inference, quirks included", _reference),
    "denoise": Protocol("denoise", 1, "denoise_mse", "training denoising MSE on held-out problems", _denoise),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        from ired.core.errors import ConfigError

        raise ConfigError(f"unknown protocol {name!r}; allowed: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
