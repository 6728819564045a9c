import math

import torch

from ired.core.run_config import NegativesConfig, ObjectiveConfig
from ired.science.losses import contrastive_loss, denoise_loss, energy_scale_penalty
from ired.science.schedules import ContrastiveController

T = torch.zeros(4, dtype=torch.long)


def test_denoise_loss_is_per_sample_mse():
    pred, eps = torch.zeros(2, 3), torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    assert torch.allclose(denoise_loss(pred, eps), torch.tensor([1.0, 4 / 3]))


def test_softplus_value_and_saturation():
    cfg = ObjectiveConfig(name="softplus", temperature=2.0)
    e_pos, e_neg = torch.tensor([0.0, 0.0, -20.0, -30.0]), torch.tensor([0.0, 2.0, 0.0, 0.0])
    out = contrastive_loss(cfg, e_pos, e_neg, T)
    expected = torch.nn.functional.softplus((e_pos - e_neg) / 2).mean()
    assert math.isclose(float(out.loss), float(expected), rel_tol=1e-6)
    # sigmoid(-10) = 4.5e-5 and sigmoid(-15) < 1% of the max: two of four samples saturated
    assert out.frac_sat == 0.5
    assert math.isclose(out.margin, float((e_neg - e_pos).mean()))


def test_cd_never_saturates_and_hinge_saturates_beyond_the_margin():
    e_pos, e_neg = torch.tensor([0.0, 0.0, 0.0, 0.0]), torch.tensor([0.5, 1.5, 3.0, -1.0])
    cd = contrastive_loss(ObjectiveConfig(name="cd"), e_pos, e_neg, T)
    assert math.isclose(float(cd.loss), float((e_pos - e_neg).mean())) and cd.frac_sat == 0.0
    hinge = contrastive_loss(ObjectiveConfig(name="hinge", margin=1.0), e_pos, e_neg, T)
    assert math.isclose(float(hinge.loss), (0.5 + 0 + 0 + 2.0) / 4)
    assert hinge.frac_sat == 0.5


def test_timestep_window_restricts_the_samples():
    cfg = ObjectiveConfig(name="cd", t_min=2, t_max=5)
    t = torch.tensor([0, 2, 5, 9])
    out = contrastive_loss(cfg, torch.zeros(4), torch.tensor([1.0, 2.0, 3.0, 4.0]), t)
    assert out.n_active == 2 and math.isclose(float(out.loss), -2.5)


def test_energy_scale_penalty():
    assert float(energy_scale_penalty(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]))) == 5.0 + 4.0


def test_weight_warmup_and_start():
    c = ContrastiveController(ObjectiveConfig(name="softplus", weight=0.5, start_step=100, warmup_steps=100),
                              NegativesConfig())
    assert [c.weight(s) for s in (0, 99, 100, 150, 200, 10_000)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]
    assert ContrastiveController(ObjectiveConfig(name="denoise"), NegativesConfig()).weight(10) == 0.0


def test_every_contrastive_objective_has_its_term_in_the_registry():
    """The config validates objective names without torch; each contrastive one has its term in the registry."""
    from ired.core.run_config import CONTRASTIVE_OBJECTIVES, OBJECTIVES
    from ired.science.losses import CONTRASTIVE_TERMS

    assert set(CONTRASTIVE_TERMS) == set(CONTRASTIVE_OBJECTIVES)
    assert [n for n in OBJECTIVES if ObjectiveConfig(name=n).contrastive] == list(CONTRASTIVE_OBJECTIVES)
    assert not ObjectiveConfig(name="denoise").contrastive


def test_contrastive_loss_uses_the_registry_entry(monkeypatch):
    from ired.science.losses import CONTRASTIVE_TERMS, ContrastiveTerm

    monkeypatch.setitem(CONTRASTIVE_TERMS, "cd", ContrastiveTerm(lambda d, T, m: (3 * d, torch.zeros_like(d))))
    out = contrastive_loss(ObjectiveConfig(name="cd"), torch.zeros(4), torch.ones(4), T)
    assert float(out.loss) == -3.0 and out.frac_sat == 1.0
