import pytest
import torch
from tolerances import EPS32, rounding_bound
from torch import nn

from gans.penalties import GradientPenalty, input_gradient_norms, interpolate


def linear_critic(shape, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(shape).prod()), 1))


@pytest.mark.parametrize("shape", [(2,), (1, 28, 28), (3, 32, 32)], ids=["points", "gray", "rgb"])
def test_gradient_penalty_of_linear_critic_is_closed_form(shape):
    critic = linear_critic(shape)
    real, fake = torch.randn(16, *shape), torch.randn(16, *shape)
    w_norm = critic[1].weight.norm()
    out = GradientPenalty(weight=10.0)(critic, real, fake, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.value, 10.0 * (w_norm - 1) ** 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.grad_norm, w_norm, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_of_quadratic_critic_at_coinciding_points():
    # D(x) = |x|^2 / 2 has gradient x, so where real == fake every interpolate is that point and
    # the penalty is lambda * mean((|x| - 1)^2).
    class Quadratic(nn.Module):
        def forward(self, x):
            return 0.5 * x.flatten(1).square().sum(1, keepdim=True)

    x = torch.randn(8, 3, 4, 4)
    out = GradientPenalty(weight=10.0)(Quadratic(), x, x.clone(), torch.Generator().manual_seed(0))
    norms = x.flatten(1).norm(dim=1)
    torch.testing.assert_close(out.value, 10.0 * ((norms - 1) ** 2).mean())


def test_gradient_penalty_backpropagates_into_the_critic():
    critic = linear_critic((2,))
    out = GradientPenalty(10.0)(critic, torch.randn(4, 2), torch.randn(4, 2), torch.Generator())
    out.value.backward()
    w = critic[1].weight.detach()
    # d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    torch.testing.assert_close(critic[1].weight.grad, 20 * (w.norm() - 1) * w / w.norm())


def test_interpolation_coefficient_is_per_sample():
    real = torch.ones(64, 3, 8, 8)
    fake = torch.zeros(64, 3, 8, 8)
    x = interpolate(real, fake, torch.Generator().manual_seed(0))
    alpha = x.flatten(1)
    # one coefficient shared by every pixel of a sample ...
    torch.testing.assert_close(alpha, alpha[:, :1].expand_as(alpha))
    # ... drawn independently per sample, uniform on [0, 1)
    assert alpha[:, 0].unique().numel() == 64
    assert 0.0 <= alpha.min() and alpha.max() < 1.0
    assert 0.35 < alpha[:, 0].mean() < 0.65


def test_interpolation_is_reproducible_from_the_generator():
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    a = interpolate(real, fake, torch.Generator().manual_seed(3))
    b = interpolate(real, fake, torch.Generator().manual_seed(3))
    c = interpolate(real, fake, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_input_gradient_norms_per_sample():
    critic = linear_critic((1, 4, 4))
    norms = input_gradient_norms(critic, torch.randn(6, 1, 4, 4))
    torch.testing.assert_close(norms, critic[1].weight.norm().expand(6))


def test_compiled_gradient_norms_equal_eager_ones_and_compile_without_a_graph_break():
    # autograd.grad(create_graph=True) would break the graph, which fullgraph=True refuses: the
    # compiled path must take torch.func.grad, and its second-order gradients must equal eager ones.
    torch.manual_seed(0)
    critic = nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    )
    x = torch.randn(32, 2)

    def penalty(x):
        return (input_gradient_norms(critic, x) - 1).square().mean()

    grads = []
    for fn in (penalty, torch.compile(penalty, fullgraph=True)):
        critic.zero_grad()
        value = fn(x)
        value.backward()
        grads.append([value.detach()] + [p.grad for p in critic.parameters() if p.grad is not None])
    assert (
        len(grads[0]) == len(grads[1]) == len(list(critic.parameters()))
    )  # value + all but 1 bias
    # The same computation summed in another order: within float32's rounding bound, the
    # longest sum being the batch times the largest layer.
    rtol = rounding_bound(len(x) * max(p.numel() for p in critic.parameters()), 1, EPS32)
    for eager, compiled in zip(*grads):
        torch.testing.assert_close(compiled, eager, rtol=0, atol=rtol * eager.abs().max().item())
    assert grads[0][1].abs().sum() > 0  # the penalty really reaches the weights
