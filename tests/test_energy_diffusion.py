import math

import torch

from ired.core.run_config import ModelConfig, NegativesConfig, ObjectiveConfig
from ired.science.data import make_split
from ired.science.diffusion import Schedule
from ired.science.energy_diffusion import EnergyDiffusion, TrainingBatch
from ired.science.losses import Shaping, denoise_loss
from ired.science.models import EnergyMLP, energy_and_grad
from ired.science.schedules import ContrastiveController


class FixedNegatives:
    """A sampler returning given negatives and recording the settings it was called with."""

    def __init__(self, y_neg: torch.Tensor) -> None:
        self.y_neg = y_neg
        self.settings: list[NegativesConfig] = []

    def sample(self, model, schedule, cond, y0, t, eps, settings):  # noqa: ANN001, ANN201
        self.settings.append(settings)
        return self.y_neg

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


def _setup(objective: ObjectiveConfig, d=4, B=8) -> tuple[EnergyDiffusion, TrainingBatch, FixedNegatives]:
    torch.manual_seed(0)
    model, schedule = EnergyMLP(d, ModelConfig(width=16, time_dim=8, depth=2)), Schedule(4)
    x, y0, eps = torch.randn(B, d), torch.randn(B, d), torch.randn(B, d)
    sampler = FixedNegatives(torch.randn(B, d))
    batch = TrainingBatch(x, y0, torch.arange(B) % 4, eps)
    return EnergyDiffusion(model, schedule, objective, sampler), batch, sampler


def test_loss_is_denoising_plus_weighted_contrastive_plus_regulariser():
    diffusion, batch, sampler = _setup(ObjectiveConfig(name="cd", contrastive_noise="shared", energy_reg=0.1))
    out = diffusion.loss(batch, Shaping(0.5, 1.0, 1.0, NegativesConfig()))
    model, schedule = diffusion.model, diffusion.schedule
    cond = model.condition(batch.x, batch.t)
    y_t = schedule.q_sample(batch.y0, batch.t, batch.eps)
    e_pos, pred = energy_and_grad(model, cond, y_t, create_graph=True)
    e_neg = model.energy(cond, sampler.y_neg)
    expected = (denoise_loss(pred, batch.eps).mean() + 0.5 * (e_pos - e_neg).mean()
                + 0.1 * (e_pos.pow(2).mean() + e_neg.pow(2).mean()))
    assert torch.allclose(out.total, expected) and out.total.requires_grad
    assert out.stats["loss_total"] == float(out.total.detach())
    assert math.isclose(out.stats["E_neg"], float(e_neg.detach().mean()), rel_tol=1e-6)

    plain, _, unused = _setup(ObjectiveConfig(name="denoise"))
    denoise = plain.loss(batch, Shaping(0.0, 1.0, 1.0, NegativesConfig()))
    assert denoise.stats["loss_total"] == denoise.stats["train_denoise_mse"] and "E_neg" not in denoise.stats
    assert unused.settings == []


def test_the_sampler_gets_the_curriculum_of_each_step_and_keeps_none_of_it():
    objective = ObjectiveConfig(name="softplus", contrastive_noise="shared")
    negatives = NegativesConfig(steps=4, steps_start=0, curriculum_steps=8)
    controller = ContrastiveController(objective, negatives)
    diffusion, batch, sampler = _setup(objective)
    for step in (0, 4, 8):
        diffusion.loss(batch, controller.at(step))
    assert [s.steps for s in sampler.settings] == [0, 2, 4]
    assert negatives.steps == 4 and not hasattr(sampler, "cfg")  # the run's config is not rewritten


def test_noised_draws_levels_then_noises_and_fresh_noise_only_when_asked():
    problems = make_split("val", 2, 6, 0)
    fresh, _, _ = _setup(ObjectiveConfig(name="softplus", contrastive_noise="fresh"), d=4)
    torch.manual_seed(5)
    batch = fresh.noised(problems)
    torch.manual_seed(5)
    t, eps, eps_c = torch.randint(0, 4, (6,)), torch.randn(6, 4), torch.randn(6, 4)
    assert torch.equal(batch.t, t) and torch.equal(batch.eps, eps)
    assert batch.eps_contrastive is not None and torch.equal(batch.eps_contrastive, eps_c)
    shared, _, _ = _setup(ObjectiveConfig(name="softplus", contrastive_noise="shared"), d=4)
    assert shared.noised(problems).eps_contrastive is None
    parts = batch.micro_batches(2)
    assert [len(p) for p in parts] == [2, 2, 2]
    assert torch.equal(torch.cat([p.eps_contrastive for p in parts if p.eps_contrastive is not None]), eps_c)
