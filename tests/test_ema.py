"""The EMA rule: the IRED release's (ema-pytorch: copy phase, warm-up decay, every 10 steps) by default."""

import torch
from conftest import tiny_config

from ired.core.run_config import TrainConfig
from ired.science.ema import ema_action
from ired.training.trainer import Trainer


def test_reference_rule_copies_for_100_steps_then_warms_up_to_the_cap():
    cfg = TrainConfig()  # defaults: reference rule, every 10, copy phase 100, power 2/3, cap 0.995
    actions = {step: ema_action(step, cfg) for step in range(1, 3001)}
    # 1, 11, ..., 101, and 111: ema-pytorch's first average begins by copying the raw weights (`initted`)
    assert [s for s, a in actions.items() if a == "copy"] == list(range(1, 112, 10))
    averaged = {s: a for s, a in actions.items() if isinstance(a, float)}
    assert min(averaged) == 121 and all((s - 1) % 10 == 0 for s in averaged)
    assert all(actions[s] is None for s in range(2, 11))
    # warm-up decay 1 - (1 + e)^(-2/3), e = steps since the copy phase ended (ema-pytorch's counters)
    assert averaged[121] == 1 - 21 ** (-2 / 3)
    assert averaged[1001] == 1 - 901 ** (-2 / 3)
    assert averaged[2991] == 0.995  # capped at ema_decay once 1 - (1 + e)^(-2/3) exceeds it (e > ~2,830)


def test_fixed_rule_is_the_old_constant_decay():
    cfg = TrainConfig(ema_rule="fixed", ema_start=0)
    assert ema_action(1, cfg) is None and ema_action(10, cfg) == 0.995 and ema_action(11, cfg) is None


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_trainer_ema_equals_raw_weights_through_step_111_then_averages(tmp_path):
    cfg = tiny_config("train.batch_size=8", "train.steps=121", "model.width=8", "model.time_dim=4")
    trainer = Trainer(cfg, tmp_path, echo=False)
    ema_at_111 = None
    for step in range(1, 122):
        trainer.train_step()
        ema, raw = _snapshot(trainer.ema), _snapshot(trainer.model)
        if (step - 1) % 10 == 0 and step <= 111:
            assert all(torch.equal(e, r) for e, r in zip(ema, raw, strict=True)), (
                f"EMA is not the raw weights at step {step}")
        if step == 111:
            ema_at_111 = ema
        if step == 115:  # between updates the EMA keeps step 111's weights
            assert all(torch.equal(e, r) for e, r in zip(ema, ema_at_111, strict=True))
    decay = 1 - 21 ** (-2 / 3)
    expected = [e0 + (1 - decay) * (r - e0) for e0, r in zip(ema_at_111, raw, strict=True)]
    assert all(torch.allclose(e, x, atol=1e-6) for e, x in zip(ema, expected, strict=True))
    assert not all(torch.equal(e, r) for e, r in zip(ema, raw, strict=True))


def test_fixed_rule_keeps_the_random_initialisation_in_the_ema(tmp_path):
    cfg = tiny_config("train.batch_size=8", "model.width=8", "model.time_dim=4", "train.ema_rule=fixed",
                      "train.ema_start=0", "train.ema_every=1")
    trainer = Trainer(cfg, tmp_path, echo=False)
    init = _snapshot(trainer.model)
    trainer.train_step()
    ema, raw = _snapshot(trainer.ema), _snapshot(trainer.model)
    expected = [i + 0.005 * (r - i) for i, r in zip(init, raw, strict=True)]
    assert all(torch.allclose(e, x, atol=1e-7) for e, x in zip(ema, expected, strict=True))
