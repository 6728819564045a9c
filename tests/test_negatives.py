import torch

from ired.core.run_config import ModelConfig, NegativesConfig
from ired.science.diffusion import Schedule
from ired.science.inference import descend
from ired.science.models import EnergyMLP, energy_and_grad
from ired.science.negatives import ReplayNegatives, chain_start, make_sampler


def _setup(head="scalar", B=32, d=9):
    torch.manual_seed(0)
    model = EnergyMLP(d, ModelConfig(head=head, width=32, time_dim=16))
    x, y0 = torch.randn(B, d), torch.randn(B, d) * 0.3
    t, eps = torch.randint(0, 10, (B,)), torch.randn(B, d)
    return model, Schedule(10), x, y0, t, eps


def test_descend_with_rejection_never_raises_the_energy():
    model, schedule, x, y0, t, eps = _setup("vector")
    cond = model.condition(x, t).detach()
    start = schedule.q_sample(y0, t, 3 * eps)
    e0, _ = energy_and_grad(model, cond, start)
    y, rejected = descend(model, schedule, cond, start, t, steps=5, step_scale=1.0, clamp=2.0)
    e1, _ = energy_and_grad(model, cond, y)
    assert (e1 <= e0 + 1e-6).all()
    assert ((rejected >= 0) & (rejected <= 1)).all()
    # an accepted step lands inside the clamp; a chain whose every step was rejected keeps its start
    moved = rejected < 1
    assert moved.any()
    assert (y[moved].abs() <= (schedule.scale(t) * 2.0)[moved] + 1e-6).all()
    assert torch.equal(y[~moved], start[~moved])


def test_every_sampler_returns_detached_level_t_negatives():
    model, schedule, x, y0, t, eps = _setup()
    cond = model.condition(x, t)
    for name in ("mined", "langevin", "replay"):
        cfg = NegativesConfig(name=name, steps=2)
        neg = make_sampler(cfg).sample(model, schedule, cond.detach(), y0, t, eps, cfg)
        assert neg.shape == y0.shape and not neg.requires_grad
        # mapped to x0, clamped, re-noised with the positives' eps: x0 within [-2, 2]
        x0 = schedule.predict_x0(neg, t, eps)
        assert x0.abs().max() <= 2.0 + 1e-3
        assert all(p.grad is None for p in model.parameters()), "sampling must not touch weight gradients"


def test_langevin_noise_makes_chains_differ():
    model, schedule, x, y0, t, eps = _setup()
    cond = model.condition(x, t).detach()
    cfg = NegativesConfig(name="langevin", steps=3, noise_scale=0.1)
    torch.manual_seed(1)
    a = make_sampler(cfg).sample(model, schedule, cond, y0, t, eps, cfg)
    b = make_sampler(cfg).sample(model, schedule, cond, y0, t, eps, cfg)
    assert not torch.allclose(a, b)
    quiet_cfg = cfg.model_copy(update={"noise_scale": 0.0})
    quiet = make_sampler(quiet_cfg)
    assert torch.allclose(quiet.sample(model, schedule, cond, y0, t, eps, quiet_cfg),
                          quiet.sample(model, schedule, cond, y0, t, eps, quiet_cfg))


def test_replay_buffer_persists_and_shrinks_keeping_the_newest():
    model, schedule, x, y0, t, eps = _setup(B=16)
    cond = model.condition(x, t).detach()
    cfg = NegativesConfig(name="replay", buffer_size=40, replay_prob=0.5)
    sampler = ReplayNegatives(cfg.buffer_size)
    for _ in range(3):
        sampler.sample(model, schedule, cond, y0, t, eps, cfg)
    assert sampler.filled == 40 and sampler.cursor == 8
    state = sampler.state_dict()
    newest = state["buffer"][(8 - 1 - torch.arange(10)) % 40].flip(0)
    small = ReplayNegatives(10)
    small.load_state_dict(state)
    assert small.filled == 10 and torch.equal(small.buffer, newest)


def test_replay_buffer_grows_keeping_its_chains():
    model, schedule, x, y0, t, eps = _setup(B=16)
    cond = model.condition(x, t).detach()
    cfg = NegativesConfig(name="replay", buffer_size=20)
    sampler = ReplayNegatives(cfg.buffer_size)
    for _ in range(2):
        sampler.sample(model, schedule, cond, y0, t, eps, cfg)
    state = sampler.state_dict()
    newest_first = state["buffer"][(state["cursor"] - 1 - torch.arange(20)) % 20]
    big = ReplayNegatives(64)
    big.load_state_dict(state)
    assert big.filled == 20 and big.cursor == 20
    assert torch.equal(big.buffer[:20], newest_first.flip(0)) and big.buffer[20:].abs().sum() == 0


def _release_mining(model, schedule, cond, y, t, steps, clamp=2.0):
    """The IRED release's training-time mining, written from its description (the IRED release's code): step i uses
    lambda_t (i = 0) or 2 lambda_t (i > 0), every iterate is clamped with the first sample's level, and a step
    that raises a sample's energy is undone for that sample."""
    lam = schedule.step_size[t].unsqueeze(-1)
    bound = float(schedule.sqrt_alphas_cumprod[t[0]]) * clamp
    for i in range(steps):
        energy, grad = energy_and_grad(model, cond, y)
        new = (y - lam * grad * (1.0 if i == 0 else 2.0)).clamp(-bound, bound)
        new_energy, _ = energy_and_grad(model, cond, new)
        y = torch.where((new_energy > energy).unsqueeze(-1), y, new)
    return y


def test_mining_reference_is_the_release_rule_and_fixed_differs():
    model, schedule, x, y0, t, eps = _setup("vector", B=64)
    t[0] = 9  # the first sample's level (bound ~0.01) clamps every sample of the batch under the release's rule
    cond = model.condition(x, t).detach()
    cfg = NegativesConfig(name="mined", steps=2)  # default mining: reference
    assert cfg.mining == "reference"
    start = chain_start(schedule, y0, t, eps, cfg)
    expected = _release_mining(model, schedule, cond, start, t, steps=2)
    ours, _ = descend(model, schedule, cond, start, t, 2, 1.0, 2.0, release_quirks=True)
    assert torch.allclose(ours, expected, atol=1e-6)
    neg = make_sampler(cfg).sample(model, schedule, cond, y0, t, eps, cfg)
    assert torch.allclose(neg, schedule.q_sample((expected / schedule.scale(t)).clamp(-2, 2), t, eps), atol=1e-5)
    fixed_cfg = NegativesConfig(name="mined", steps=2, mining="fixed")
    fixed = make_sampler(fixed_cfg).sample(model, schedule, cond, y0, t, eps, fixed_cfg)
    assert not torch.allclose(fixed, neg, atol=1e-3)
