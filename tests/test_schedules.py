"""The contrastive schedules of the saturation study behave as their config says."""

import json

from conftest import tiny_config

from ired.core.run_config import NegativesConfig, ObjectiveConfig
from ired.science.schedules import ContrastiveController
from ired.training.trainer import train


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_curriculum_ramps_steps_noise_and_replay_from_start_step():
    c = ContrastiveController(
        ObjectiveConfig(name="softplus", start_step=100),
        NegativesConfig(name="replay", steps=4, steps_start=0, init_noise=3.0, init_noise_start=6.0,
                        replay_prob=0.9, replay_prob_start=0.0, curriculum_steps=200),
    )
    assert c.negative_settings(0) == {"steps": 0, "init_noise": 6.0, "replay_prob": 0.0}
    assert c.negative_settings(200) == {"steps": 2, "init_noise": 4.5, "replay_prob": 0.45}
    assert c.negative_settings(300) == c.negative_settings(10_000) == {
        "steps": 4, "init_noise": 3.0, "replay_prob": 0.9}


def test_default_schedules_change_nothing():
    c = ContrastiveController(ObjectiveConfig(name="hinge"), NegativesConfig())
    assert c.negative_settings(0) == {"steps": 2, "init_noise": 3.0, "replay_prob": 0.95}
    assert c.margin(0) == c.margin(10**6) == 1.0 and c.weight(0) == 0.5
    c.observe(1.0)
    assert c.temperature == 1.0


def test_margin_ramp():
    c = ContrastiveController(
        ObjectiveConfig(name="hinge", margin=0.0, margin_final=2.0, margin_ramp_steps=100, start_step=50),
        NegativesConfig())
    assert [c.margin(s) for s in (0, 50, 100, 150, 400)] == [0.0, 0.0, 1.0, 2.0, 2.0]


def test_adaptive_temperature_moves_against_saturation():
    c = ContrastiveController(
        ObjectiveConfig(name="softplus", adaptive_temperature=True, frac_sat_band=(0.2, 0.6), temperature_rate=0.1),
        NegativesConfig())
    c.observe(0.9)
    assert abs(c.temperature - 1.1) < 1e-12
    c.observe(0.4)
    assert abs(c.temperature - 1.1) < 1e-12
    c.observe(0.0)
    assert abs(c.temperature - 1.0) < 1e-12


def test_adaptive_temperature_keeps_frac_sat_in_its_band_when_training(tmp_path):
    common = ("objective.name=softplus", "objective.temperature=0.01", "objective.frac_sat_band=[0.2,0.6]",
              "objective.temperature_rate=0.1", "train.steps=200", "train.lr=3e-3", "train.eval_every=100")
    train(tiny_config(*common), tmp_path / "fixed", echo=False)
    train(tiny_config(*common, "objective.adaptive_temperature=true"), tmp_path / "adaptive", echo=False)
    fixed, adaptive = _rows(tmp_path / "fixed"), _rows(tmp_path / "adaptive")
    assert all(r["frac_sat"] > 0.6 for r in fixed[2:]), "without adaptation this setting saturates"
    assert all(0.2 <= r["frac_sat"] <= 0.6 for r in adaptive[-5:])
    assert adaptive[-1]["temperature"] > 0.05 and abs(fixed[-1]["temperature"] - 0.01) < 1e-9


def test_start_step_and_curriculum_reach_the_trainer(tmp_path):
    cfg = tiny_config("objective.name=cd", "objective.start_step=40", "objective.warmup_steps=20",
                      "negatives.steps_start=0", "negatives.curriculum_steps=20")
    train(cfg, tmp_path, echo=False)
    rows = _rows(tmp_path)
    weights = {r["step"]: r["contrastive_weight"] for r in rows}
    # interval means of the per-step weight: 0 before step 40, ramping to 0.5 after
    assert weights[20] == 0.0 and weights[40] == 0.0 and 0.2 < weights[60] <= 0.5


def test_the_sampler_config_is_rebuilt_only_when_the_curriculum_moves():
    plain = ContrastiveController(ObjectiveConfig(name="softplus"), NegativesConfig())
    assert plain.negatives_at(0) is plain.negatives and plain.negatives_at(10**6) is plain.negatives
    c = ContrastiveController(ObjectiveConfig(name="softplus"),
                              NegativesConfig(steps=4, steps_start=0, curriculum_steps=8))
    assert c.negatives_at(0).steps == 0 and c.negatives_at(8).steps == 4
    assert c.negatives_at(100) is c.negatives_at(200)  # past the ramp: one config, not one per step
    assert c.negatives_at(2) is c.negatives_at(2) and c.negatives_at(2) is not c.negatives_at(4)
