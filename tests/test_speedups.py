import copy

import pytest
import torch
from torch import nn

from gans.constraints import WeightClipping
from gans.hyperparameters import Hyperparameters
from gans.models import ARCHITECTURES, build_models
from gans.penalties import GradientPenalty
from gans.speedups import FlatParameters, GatedLeakyReLU, gate_activations


def critic(arch, shape):
    torch.manual_seed(0)
    return build_models(arch, ARCHITECTURES.get(arch).config(shape, width=8))[1]


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.5, -0.1])
def test_gated_activation_equals_leaky_relu_bit_for_bit(slope):
    x = torch.randn(1000) * 10.0 ** torch.randint(-30, 3, (1000,))
    x[:3] = torch.tensor([0.0, -0.0, -1e-40])  # zero, negative zero and a denormal
    gated, plain = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = GatedLeakyReLU(slope)(gated)
    expected = nn.LeakyReLU(slope)(plain)
    assert torch.equal(out, expected)
    grad = torch.randn_like(x)
    out.backward(grad)
    expected.backward(grad)
    assert torch.equal(gated.grad, plain.grad)


def test_gated_activation_keeps_a_bfloat16_input_in_bfloat16():
    x = torch.randn(1000).bfloat16()
    out = GatedLeakyReLU(0.2)(x)
    assert out.dtype == torch.bfloat16
    # The slope is rounded to bfloat16 (0.2002) where nn.LeakyReLU uses the float32 0.2: some
    # outputs differ by one unit in the last place, 2**-7 relative.
    torch.testing.assert_close(out, nn.LeakyReLU(0.2)(x), rtol=2**-7, atol=0)


def test_gate_activations_replaces_nested_relus_and_keeps_the_parameters():
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU()))
    keys = list(net.state_dict())
    gate_activations(net)
    assert isinstance(net[1], GatedLeakyReLU) and net[1].negative_slope == 0.0
    assert isinstance(net[2][1], GatedLeakyReLU) and net[2][1].negative_slope == 0.01
    assert list(net.state_dict()) == keys


@pytest.mark.parametrize(
    ("arch", "shape"), [("dcgan28", (1, 28, 28)), ("mlp", (2,))], ids=["leaky-relu", "relu"]
)
def test_gradient_penalty_gradients_are_unchanged_bit_for_bit(arch, shape):
    plain = critic(arch, shape)
    gated = gate_activations(copy.deepcopy(plain))
    assert any(isinstance(m, GatedLeakyReLU) for m in gated.modules())
    real, fake = torch.randn(8, *shape), torch.randn(8, *shape)
    grads = []
    for net in (plain, gated):
        out = GradientPenalty(10.0)(net, real, fake, torch.Generator().manual_seed(0))
        # The last layer's bias does not move the input gradient: it gets a zero gradient.
        grads.append(
            torch.autograd.grad(
                out.value, list(net.parameters()), allow_unused=True, materialize_grads=True
            )
        )
    for expected, got in zip(*grads):
        assert torch.equal(got, expected)


def _train(critic, shape, params, hparams, zero_grad, steps=4):
    """A few critic updates with the given optimizer parameters; clipping when hparams clip."""
    opt = hparams.make_optimizer(params)
    torch.manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, *shape)
        if len(shape) == 3:
            x = x.contiguous(memory_format=torch.channels_last)
        zero_grad()
        (critic(x).mean() + critic(x * 0.5).square().mean()).backward()
        opt.step()
        if hparams.clip_value:
            active = WeightClipping(hparams.clip_value)(params)
    return active if hparams.clip_value else None


@pytest.mark.parametrize(
    "hparams",
    [Hyperparameters("rmsprop", 1e-3), Hyperparameters("rmsprop", 1e-3, clip_value=0.01)],
    ids=["rmsprop", "rmsprop-clipping"],
)
@pytest.mark.parametrize(("arch", "shape"), [("dcgan28", (1, 28, 28)), ("mlp", (2,))])
def test_flat_parameters_train_bit_for_bit_like_separate_ones(hparams, arch, shape):
    plain = critic(arch, shape)
    if arch == "dcgan28":
        plain = plain.to(memory_format=torch.channels_last)
    flat_net = copy.deepcopy(plain)
    strides = [p.stride() for p in plain.parameters()]
    flat = FlatParameters(flat_net)
    assert [p.stride() for p in flat_net.parameters()] == strides  # channels_last kept
    assert flat.parameter.numel() == sum(p.numel() for p in plain.parameters())

    def plain_zero_grad():
        plain.zero_grad(set_to_none=True)

    def flat_zero_grad():
        flat_net.zero_grad(set_to_none=True)  # what a careless plugin might do: relinked below
        flat.zero_grad()

    active = _train(plain, shape, list(plain.parameters()), hparams, plain_zero_grad)
    flat_active = _train(flat_net, shape, [flat.parameter], hparams, flat_zero_grad)
    for expected, got in zip(plain.state_dict().values(), flat_net.state_dict().values()):
        assert torch.equal(got, expected)
    if hparams.clip_value:
        assert 0 < active < 1 and torch.equal(flat_active, active)
        assert flat.parameter.abs().max() == hparams.clip_value
    # the module's parameters and gradients are views of the flat tensors, not copies
    first = next(flat_net.parameters())
    assert first.data_ptr() == flat.parameter.data_ptr()
    assert first.grad.data_ptr() == flat.parameter.grad.data_ptr()


@pytest.mark.parametrize("threads", [1, 2])
def test_rmsprop_updates_one_flat_tensor_as_it_updates_the_separate_parameters(threads):
    """The premise of FLATTENED_OPTIMIZERS, over parameter sizes that put tensor boundaries and
    thread splits anywhere (fused Adam differed for 9 of 40 such sets when this was written)."""
    sizes = torch.randint(1, 70_000, (6,), generator=torch.Generator().manual_seed(threads))
    torch.manual_seed(0)
    separate = [torch.randn(int(n), requires_grad=True) for n in sizes]
    flat = torch.cat([p.detach() for p in separate]).requires_grad_()
    optimizers = [Hyperparameters("rmsprop", 1e-3).make_optimizer(p) for p in (separate, [flat])]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(5):
            grads = [torch.randn_like(p) for p in separate]
            for p, g in zip(separate, grads):
                p.grad = g
            flat.grad = torch.cat(grads)
            for optimizer in optimizers:
                optimizer.step()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(torch.cat([p.detach() for p in separate]), flat.detach())


def test_flat_parameters_take_back_values_assigned_with_data():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    flat = FlatParameters(net)
    weight = net[0].weight
    with torch.no_grad():
        clipped = weight.clamp(-0.01, 0.01)
        weight.data = clipped.clone()  # re-bound, as some WGAN ports clip
    assert weight.data_ptr() != flat.parameter.data_ptr()
    flat.zero_grad()
    in_flat = flat.parameter[: weight.numel()].view_as(weight)
    assert weight.data_ptr() == flat.parameter.data_ptr() and torch.equal(in_flat, clipped)
    # and the gradient lands in the flat gradient, the one the optimizer reads
    x = torch.randn(2, 3)
    (expected,) = torch.autograd.grad(net(x).sum(), weight)
    net(x).sum().backward()
    assert torch.equal(flat.parameter.grad[: weight.numel()].view_as(weight), expected)


def test_flat_parameters_refuse_mixed_dtypes():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double())
    with pytest.raises(ValueError, match="one dtype on one device"):
        FlatParameters(net)
