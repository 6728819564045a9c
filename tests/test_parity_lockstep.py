"""The step-by-step parity check's own machinery (benchmarks.parity_lockstep), without the release's code.

The release's side is played by ired's trainer recording itself the way bench_release_driver records the release
(weights in the release's names, every batch, torch reseeded after each batch is drawn), so a replay must agree
exactly, and a replay with a named deviation must not.
"""

from __future__ import annotations

import math

import torch

from benchmarks.parity_lockstep import (
    TOLERANCE,
    compare,
    ired_state_from_release,
    record_ired,
    relative_difference,
    release_state,
    replay,
)
from ired.science.models import EnergyMLP, build_model


def release_energy(
    w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, time_dim: int
) -> torch.Tensor:
    """The release's EBM written out from its description: swish(fc1(concat)), two FiLM layers with the activation
    after the modulation, E = ||fc4(h)||^2."""
    def linear(name: str, h: torch.Tensor) -> torch.Tensor:
        return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def swish(h: torch.Tensor) -> torch.Tensor:
        return h * torch.sigmoid(h)

    half = time_dim // 2
    freqs = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))
    angles = t.float()[:, None] * freqs[None, :]
    temb = linear("time_mlp.3",
                  torch.nn.functional.gelu(linear("time_mlp.1", torch.cat([angles.sin(), angles.cos()], -1))))
    h = swish(linear("fc1", torch.cat([x, y], -1)))
    for layer, film in (("fc2", "t_map_fc2"), ("fc3", "t_map_fc3")):
        gain, bias = linear(film, temb).chunk(2, -1)
        h = swish(linear(layer, h) * (gain + 1) + bias)
    return linear("fc4", h).pow(2).sum(-1)


def test_the_release_weights_map_onto_energy_mlp_and_give_the_release_energy(tiny):
    cfg = tiny()
    torch.manual_seed(3)
    weights = release_state(build_model(cfg).state_dict())
    weights = {k: torch.randn_like(v) * 0.3 for k, v in weights.items()}  # not ired's init: any release weights
    model = EnergyMLP(cfg.data.n ** 2, cfg.model)
    model.load_state_dict(ired_state_from_release(weights))
    x, y, t = torch.randn(7, 9), torch.randn(7, 9), torch.tensor([0, 9, 3, 3, 1, 5, 9])
    assert torch.allclose(model(x, y, t), release_energy(weights, x, y, t, cfg.model.time_dim), rtol=1e-5, atol=1e-5)
    back = release_state(ired_state_from_release(weights))
    assert all(torch.equal(back[k], weights[k]) for k in weights)


def test_a_replay_of_the_same_training_is_the_same_and_a_named_deviation_differs(tiny, tmp_path):
    cfg = tiny("objective.name=softplus", "train.ema_every=2", "train.ema_start=4")
    record = record_ired(cfg, 12, 500, tmp_path / "recorded")
    torch.manual_seed(99)  # the replay must not depend on the generator's state before it
    summary, steps = compare("contrastive", "reference", record, replay(cfg, record, tmp_path / "replay"))
    assert summary["verdict"] == "same" and summary["steps"] == 12 == len(steps)
    assert summary["train_denoise_mse"] == 0.0 and summary["loss_contrastive"] == 0.0
    assert summary["weights"] == 0.0 and summary["ema_weights"] == 0.0
    assert [r["ired_margin"] for r in steps] == record["margin"]

    deviating = tiny("objective.name=softplus", "train.ema_every=2", "train.ema_start=4", "negatives.mining=fixed")
    summary, _ = compare("contrastive", "mining", record, replay(deviating, record, tmp_path / "deviation"))
    assert summary["verdict"] == "differs"
    assert summary["loss_contrastive"] > TOLERANCE and summary["weights"] > TOLERANCE


def test_relative_difference_handles_missing_and_zero():
    assert relative_difference(None, 1.0) is None and relative_difference(1.0, None) is None
    assert relative_difference(1.5, 1.0) == 0.5
    assert relative_difference(0.0, 0.0) == 0.0 and relative_difference(1.0, 0.0) == math.inf


def test_the_fused_kernel_replays_the_default_training_within_the_tolerance(tiny, tmp_path):
    """train.kernel=fused in lockstep with the default step it replaces (parity_lockstep --record-ired --set
    train.kernel=fused): the same steps to float32 rounding, not bit for bit."""
    for objective in ("denoise", "softplus"):
        cfg = tiny(f"objective.name={objective}", "train.ema_every=2", "train.ema_start=4")
        record = record_ired(cfg, 12, 500, tmp_path / f"{objective}-recorded")
        fused = tiny(f"objective.name={objective}", "train.ema_every=2", "train.ema_start=4", "train.kernel=fused")
        summary, _ = compare(objective, "fused", record, replay(fused, record, tmp_path / f"{objective}-fused"))
        assert summary["verdict"] == "same", summary
        assert 0 < summary["weights"] <= TOLERANCE
