import torch
from torch import nn

from gans.constraints import WeightClipping


def test_weight_clipping_bounds_every_parameter_and_reports_the_boundary_share():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.linspace(-0.05, 0.05, p.numel()).view_as(p))
    before = [p.detach().clone() for p in critic.parameters()]
    active = WeightClipping(0.01)(list(critic.parameters()))
    n_total = sum(p.numel() for p in before)
    n_outside = sum((p.abs() >= 0.01).sum().item() for p in before)
    for p, old in zip(critic.parameters(), before):
        assert p.abs().max() <= 0.01
        inside = old.abs() < 0.01
        torch.testing.assert_close(p[inside], old[inside], rtol=0, atol=0)
    torch.testing.assert_close(active, torch.tensor(n_outside / n_total))


def test_weight_clipping_of_one_flat_tensor_equals_clipping_each_parameter():
    torch.manual_seed(0)
    parameters = [torch.randn(3, 4) * 0.02, torch.randn(5) * 0.02]
    flat = torch.cat([p.reshape(-1) for p in parameters])
    each = WeightClipping(0.01)(parameters)
    once = WeightClipping(0.01)([flat])
    assert torch.equal(flat, torch.cat([p.reshape(-1) for p in parameters]))
    assert once == each and 0 < each < 1
