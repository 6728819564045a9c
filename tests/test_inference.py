"""The sampler on an energy whose minimiser is known: it must find the true inverse."""

import pytest
import torch
from torch import nn

from ired.science.data import make_split
from ired.science.diffusion import Schedule
from ired.science.inference import InferenceSettings, InferenceStats, annealed_inference
from ired.science.models import Conditioning


class OracleEnergy(nn.Module):
    """E(x, y, t) = ||y - sqrt(ab_t) A^-1||^2 / (2 sqrt(1 - ab_t)): its gradient is the true noise."""

    def __init__(self, schedule: Schedule) -> None:
        super().__init__()
        self.schedule = schedule

    def condition(self, x, t):  # noqa: ANN001
        n = int(x.shape[1] ** 0.5)
        target = torch.linalg.inv(x.reshape(-1, n, n).double()).float().reshape(x.shape)
        s, r = self.schedule.scale(t), self.schedule.at(self.schedule.sqrt_one_minus_alphas_cumprod, t)
        return Conditioning(s * target, [(r, r)])

    def energy(self, cond, y):  # noqa: ANN001
        center, (r, _) = cond.x_features, cond.film[0]
        return ((y - center).pow(2) / (2 * r)).sum(-1)

    def forward(self, x, y, t):  # noqa: ANN001
        return self.energy(self.condition(x, t), y)


def test_oracle_energy_is_solved_exactly_and_quirks_scale_the_output():
    schedule = Schedule(10)
    problems = make_split("val", 3, 64, 0)
    model = OracleEnergy(schedule)
    stats = InferenceStats()
    pred = annealed_inference(model, schedule, problems.A, InferenceSettings(steps_per_level=3),
                              torch.Generator().manual_seed(0), stats, track_energy=True)
    assert (pred - problems.A_inv).pow(2).mean() < 1e-8
    summary = stats.summary()
    assert summary["rejected_frac"] is not None and 0 <= summary["rejected_frac"] <= 1
    assert summary["energy_monotone_frac"] is not None
    quirky = annealed_inference(model, schedule, problems.A,
                                InferenceSettings(steps_per_level=3, reference_quirks=True),
                                torch.Generator().manual_seed(0))
    assert torch.allclose(quirky, float(schedule.sqrt_alphas_cumprod[0]) * problems.A_inv, atol=1e-4)


def test_inference_is_deterministic_by_seed_and_chunking():
    schedule = Schedule(10)
    torch.manual_seed(0)
    from ired.core.run_config import ModelConfig
    from ired.science.models import EnergyMLP

    model = EnergyMLP(9, ModelConfig(width=32, time_dim=16)).requires_grad_(False)
    A = make_split("val", 3, 32, 0).A
    s = InferenceSettings(steps_per_level=2)
    a = annealed_inference(model, schedule, A, s, torch.Generator().manual_seed(5))
    b = annealed_inference(model, schedule, A, s, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    c = torch.cat([annealed_inference(model, schedule, A[:16], s, g),
                   annealed_inference(model, schedule, A[16:], s, g)])
    assert torch.equal(a, b)
    assert torch.allclose(a, c, atol=1e-6)


def test_skipping_the_unused_last_gradient_changes_no_number():
    """descend no longer computes its last step's gradient (never used) and builds no graph: inference and every
    sampler give the numbers of the full computation (ired.science.inference.unused_gradients) bit for bit, with fewer
    gradient evaluations."""
    from ired.core.run_config import ModelConfig, NegativesConfig
    from ired.science.inference import unused_gradients
    from ired.science.models import EnergyMLP
    from ired.science.negatives import make_sampler

    schedule = Schedule(10)
    torch.manual_seed(0)
    model = EnergyMLP(9, ModelConfig(width=32, time_dim=16))  # weights that require grad, as in training
    problems = make_split("val", 3, 32, 0)
    for quirks in (False, True):
        s = InferenceSettings(steps_per_level=3, reference_quirks=quirks)
        fast = annealed_inference(model, schedule, problems.A, s, torch.Generator().manual_seed(5), InferenceStats())
        with unused_gradients():
            full = annealed_inference(model, schedule, problems.A, s, torch.Generator().manual_seed(5))
        assert torch.equal(fast, full)
    t, eps = torch.randint(0, 10, (32,)), torch.randn(32, 9)
    cond = model.condition(problems.A, t).detach()
    for name in ("mined", "langevin", "replay"):
        cfg = NegativesConfig(name=name, steps=3)
        torch.manual_seed(1)
        fast = make_sampler(cfg).sample(model, schedule, cond, problems.A_inv, t, eps, cfg)
        torch.manual_seed(1)
        with unused_gradients():
            full = make_sampler(cfg).sample(model, schedule, cond, problems.A_inv, t, eps, cfg)
        assert torch.equal(fast, full), name
        assert fast.grad_fn is None

    calls = []
    original = EnergyMLP.energy

    def counting(self, cond, y):  # noqa: ANN001
        calls.append(torch.is_grad_enabled())
        return original(self, cond, y)

    EnergyMLP.energy = counting
    try:
        mined = NegativesConfig(name="mined", steps=3)
        make_sampler(mined).sample(model, schedule, cond, problems.A_inv, t, eps, mined)
    finally:
        EnergyMLP.energy = original
    assert calls == [False]  # 3 gradients written out (no energy() call), the last step's energy alone, no graph


def test_compiled_inference_is_the_exact_one_within_float32_rounding():
    """inference.kernel: compiled runs the same inference, its written-out gradient compiled by torch.compile; the
    run's protocol takes the key, the reference protocol stays exact."""
    from conftest import tiny_config

    from ired.core.run_config import ModelConfig
    from ired.evaluation.protocols import REFERENCE_SETTINGS, current_settings
    from ired.science.compiled import CompiledGraphFree
    from ired.science.models import EXACT, EnergyMLP

    schedule = Schedule(10)
    torch.manual_seed(0)
    model = EnergyMLP(9, ModelConfig(width=32, time_dim=16))
    problems = make_split("val", 3, 64, 0)
    settings = current_settings(tiny_config("inference.kernel=compiled", "inference.steps_per_level=3"))
    assert isinstance(settings.graph_free(), CompiledGraphFree) and REFERENCE_SETTINGS.graph_free() is EXACT
    for size in (64, 40):  # a second batch size: the compiled graphs are not tied to one
        batch = problems.slice(0, size)
        exact = annealed_inference(model, schedule, batch.A, InferenceSettings(steps_per_level=3),
                                   torch.Generator().manual_seed(5))
        compiled = annealed_inference(model, schedule, batch.A, settings, torch.Generator().manual_seed(5))
        # an inner step whose two energies agree to rounding may be kept by one and rejected by the other: a few
        # values move by a step, every other one agrees to rounding, and the task MSE with them
        assert torch.isclose(compiled, exact, rtol=1e-4, atol=1e-5).float().mean() > 0.98
        assert float((compiled - batch.A_inv).pow(2).mean()) == pytest.approx(
            float((exact - batch.A_inv).pow(2).mean()), rel=1e-3)
