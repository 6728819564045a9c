import torch

from ired.config import ModelConfig
from ired.diffusion import Schedule
from ired.models import EnergyMLP, count_parameters, energy_and_grad


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
    from ired.models import sinusoidal_embedding

    temb = m.time_mlp(sinusoidal_embedding(t, 16))
    for layer, film in zip(m.hidden, m.film):
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
