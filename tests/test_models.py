import torch

from ired.core.run_config import ModelConfig
from ired.science.diffusion import Schedule
from ired.science.models import EnergyMLP, autograd_energy_grad, count_parameters, energy_and_grad, explicit_energy_grad


def test_reference_size_and_parameter_count():
    assert abs(count_parameters(EnergyMLP(400, ModelConfig())) - 1.44e6) < 0.01e6


def test_schedule_matches_reference():
    s = Schedule(10)
    assert abs(float(s.sqrt_alphas_cumprod[0]) - 0.9859) < 1e-4
    assert abs(float(s.sqrt_alphas_cumprod[9]) - 0.0049) < 1e-4
    assert abs(float(s.step_size[0]) - 0.167) < 1e-3 and abs(float(s.step_size[9]) - 0.999) < 1e-3
    y0, eps = torch.randn(8, 4), torch.randn(8, 4)
    t = torch.arange(8) % 10
    assert torch.allclose(s.predict_x0(s.q_sample(y0, t, eps), t, eps), y0, atol=1e-3)


def _model(head, d=9):
    torch.manual_seed(0)
    return EnergyMLP(d, ModelConfig(head=head, width=32, time_dim=16))


def test_heads_shapes_and_sign():
    x, y, t = torch.randn(5, 9), torch.randn(5, 9), torch.tensor([0, 1, 2, 3, 9])
    vector, scalar = _model("vector")(x, y, t), _model("scalar")(x, y, t)
    assert vector.shape == scalar.shape == (5,)
    assert (vector >= 0).all()
    assert _model("scalar").head.out_features == 1 and _model("vector").head.out_features == 9


def test_split_first_layer_and_shared_film_equal_the_plain_mlp():
    """fc_x/fc_y and per-level FiLM compute exactly Linear(concat[x, y]) with per-sample FiLM."""
    m = _model("vector")
    x, y, t = torch.randn(6, 9), torch.randn(6, 9), torch.tensor([3, 0, 3, 7, 0, 1])
    W = torch.cat([m.fc_x.weight, m.fc_y.weight], dim=1)
    h = torch.nn.functional.silu(torch.cat([x, y], -1) @ W.T + m.fc_y.bias)
    from ired.science.models import sinusoidal_embedding

    temb = m.time_mlp(sinusoidal_embedding(t, 16))
    for layer, film in zip(m.hidden, m.film, strict=True):
        gain, bias = film(temb).chunk(2, -1)
        h = torch.nn.functional.silu(layer(h) * (gain + 1) + bias)  # the release: activation after the FiLM
    expected = m.head(h).pow(2).sum(-1)
    assert torch.allclose(m(x, y, t), expected, atol=1e-5)


def test_gradients_flow_through_double_backprop():
    for head in ("vector", "scalar"):
        m = _model(head)
        x, y, t = torch.randn(4, 9), torch.randn(4, 9), torch.randint(0, 10, (4,))
        energy, grad = energy_and_grad(m, m.condition(x, t), y, create_graph=True)
        assert grad.shape == y.shape and grad.requires_grad
        grad.pow(2).mean().backward()
        # every parameter gets a gradient, except the scalar head's bias: grad_y E does not depend on it
        missing = {n for n, p in m.named_parameters() if p.grad is None}
        assert missing == ({"head.bias"} if head == "scalar" else set())
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        assert m.fc_y.weight.grad.abs().sum() > 0
        # grad_y E matches finite differences
        e0, g0 = energy_and_grad(m, m.condition(x, t).detach(), y)
        h = 1e-3
        y2 = y.clone()
        y2[:, 0] += h
        fd = (m(x, y2, t) - m(x, y, t)) / h
        assert torch.allclose(fd, g0[:, 0], rtol=0.05, atol=1e-3)


def _every_head_and_depth():
    """The energy MLPs the config allows, as far as their gradient goes: both heads, the fixed activation order
    (swish after the FiLM modulation), one to three FiLM layers."""
    for head in ("vector", "scalar"):
        for depth in (2, 3, 4):
            torch.manual_seed(depth)
            yield head, depth, EnergyMLP(9, ModelConfig(head=head, width=32, time_dim=16, depth=depth))


def test_written_out_gradient_is_autograds_bit_for_bit():
    """energy_and_grad without a graph (inference, mining, evaluation) writes the backward pass out: the same
    energies and gradients as autograd, bit for bit, for every head and depth, and no graph."""
    x, y, t = torch.randn(40, 9), torch.randn(40, 9) * 2, torch.randint(0, 10, (40,))
    for head, depth, model in _every_head_and_depth():
        cond = model.condition(x, t).detach()
        leaf = y.clone().requires_grad_(True)
        energy = model.energy(cond, leaf)
        (grad,) = torch.autograd.grad(energy.sum(), leaf)
        fast_energy, fast_grad = energy_and_grad(model, cond, y)
        assert torch.equal(fast_energy, energy.detach()) and torch.equal(fast_grad, grad), (head, depth)
        assert fast_grad.grad_fn is None and not fast_grad.requires_grad


def test_fused_gradient_and_its_weight_gradients_match_the_double_backward():
    """train.kernel=fused: grad_y E written out with differentiable operations, backpropagated once, gives the
    double backward's grad_y E and weight gradients within float32 rounding, for every head and depth."""
    x, y, t = torch.randn(40, 9), torch.randn(40, 9), torch.randint(0, 10, (40,))
    target = torch.randn(40, 9)
    for head, depth, model in _every_head_and_depth():
        params = list(model.parameters())
        energy, grad = autograd_energy_grad(model, model.condition(x, t), y)
        reference = torch.autograd.grad((grad - target).pow(2).mean() + energy.mean(), params)
        energy2, grad2 = explicit_energy_grad(model, model.condition(x, t), y, differentiable=True)
        fused = torch.autograd.grad((grad2 - target).pow(2).mean() + energy2.mean(), params)
        assert torch.allclose(energy2, energy, rtol=1e-6, atol=1e-6), (head, depth)
        assert torch.allclose(grad2, grad, rtol=1e-5, atol=1e-6), (head, depth)
        for a, b in zip(fused, reference, strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (head, depth)
