import copy

import pytest
import torch
from torch import nn

from gans.constraints import WeightClipping
from gans.hyperparameters import Hyperparameters
from gans.models import ARCHITECTURES, build_models
from gans.penalties import GradientPenalty
from gans.speedups import (
    FlatParameters,
    GatedLeakyReLU,
    SubpixelConvTranspose2d,
    SubpixelGradientConv2d,
    gate_activations,
    subpixel_image_gradients,
    subpixel_image_layers,
)


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
            active = WeightClipping(hparams.clip_value)(critic)
    return active if hparams.clip_value else None


@pytest.mark.parametrize(
    "hparams",
    [
        Hyperparameters("adam", 1e-3, (0.5, 0.9)),
        Hyperparameters("rmsprop", 1e-3, clip_value=0.01),
    ],
    ids=["fused-adam", "rmsprop-clipping"],
)
@pytest.mark.parametrize(("arch", "shape"), [("dcgan28", (1, 28, 28)), ("mlp", (2,))])
def test_flat_parameters_train_bit_for_bit_like_separate_ones(hparams, arch, shape):
    plain = critic(arch, shape)
    if arch == "dcgan28":
        plain = plain.to(memory_format=torch.channels_last)
    flat_net = copy.deepcopy(plain)
    strides = [p.stride() for p in plain.parameters()]
    flat = FlatParameters(flat_net)
    assert FlatParameters.of(flat_net) is flat and FlatParameters.of(plain) is None
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


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "padding", "output_padding", "bias"),
    [
        (16, 1, 5, 2, 1, True),  # dcgan28's last generator layer
        (8, 3, 5, 2, 1, True),  # dcgan32's, RGB
        (6, 2, 4, 1, 0, False),  # the DCGAN paper's 4x4 kernels, no bias
        (5, 4, 3, 1, 1, True),
    ],
)
def test_subpixel_transposed_convolution_equals_the_transposed_one(
    c_in, c_out, kernel, padding, output_padding, bias
):
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(
        c_in, c_out, kernel, stride=2, padding=padding, output_padding=output_padding, bias=bias
    )
    subpixel = SubpixelConvTranspose2d(copy.deepcopy(conv))
    x = torch.randn(4, c_in, 7, 9).contiguous(memory_format=torch.channels_last)
    outputs, grads = [], []
    for net in (conv, subpixel):
        x_ = x.clone().requires_grad_(True)
        out = net(x_)
        out.backward(torch.linspace(0.1, 1, out.numel()).view_as(out))
        outputs.append(out)
        grads.append([x_.grad, *(p.grad for p in net.parameters())])
    assert outputs[1].shape == outputs[0].shape == (4, c_out, 14, 18)
    # The same products added in another order: equal up to float32 rounding.
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert list(subpixel.state_dict()) == list(conv.state_dict())


def test_subpixel_image_layers_swaps_only_the_layers_that_write_an_image():
    generator, _ = build_models("dcgan28", ARCHITECTURES.get("dcgan28").config((3, 28, 28), 8))
    keys = list(generator.state_dict())
    subpixel_image_layers(generator)
    swapped = [type(m) for m in generator.modules() if "Conv" in type(m).__name__]
    assert swapped == [nn.ConvTranspose2d, nn.ConvTranspose2d, SubpixelConvTranspose2d]
    assert list(generator.state_dict()) == keys
    with pytest.raises(ValueError, match="does not double"):
        SubpixelConvTranspose2d(nn.ConvTranspose2d(4, 1, 5, stride=2, padding=2))


def _conv_pair(c_in, c_out, kernel, padding, dtype=torch.float32):
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, kernel, stride=2, padding=padding).to(dtype)
    conv = conv.to(memory_format=torch.channels_last)
    return conv, SubpixelGradientConv2d(copy.deepcopy(conv))


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "padding"),
    [
        (1, 16, 5, 2),  # dcgan28's first critic layer
        (3, 8, 5, 2),  # dcgan32's, RGB
        (3, 6, 4, 1),  # the DCGAN paper's 4x4 kernels
        (2, 5, 3, 1),
    ],
)
def test_subpixel_gradient_convolution_equals_the_convolution(c_in, c_out, kernel, padding):
    conv, subpixel = _conv_pair(c_in, c_out, kernel, padding)
    x = torch.randn(4, c_in, 14, 18).contiguous(memory_format=torch.channels_last)
    outputs, grads = [], []
    for net in (conv, subpixel):
        x_ = x.clone().requires_grad_(True)
        out = net(x_)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        outputs.append(out)
        grads.append([x_.grad, *(p.grad for p in net.parameters())])
    assert torch.equal(outputs[1], outputs[0])
    assert outputs[1].shape == (4, c_out, 7, 9)
    # The input gradient adds the same products in another order: equal up to float32 rounding.
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert list(subpixel.state_dict()) == list(conv.state_dict())


def test_subpixel_gradient_convolution_without_input_gradient_is_the_ordinary_one():
    # The critic's own step: no gradient to the data, so the weight and bias gradients come from
    # the ordinary backward, bit for bit.
    conv, subpixel = _conv_pair(1, 16, 5, 2)
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    # The plain path, not the custom function (whose conv2d_weight gives the same values here).
    assert type(subpixel(x).grad_fn).__name__ == "ConvolutionBackward0"
    assert type(subpixel(x.requires_grad_(True)).grad_fn).__name__ != "ConvolutionBackward0"
    x = x.detach()
    for net in (conv, subpixel):
        net(x).square().sum().backward()
    for got, expected in zip(subpixel.parameters(), conv.parameters()):
        assert torch.equal(got.grad, expected.grad)


def test_subpixel_gradient_convolution_can_be_differentiated_twice():
    # A plugin's loss may differentiate the input gradient again (as a gradient penalty does).
    _, subpixel = _conv_pair(2, 3, 5, 2, dtype=torch.float64)
    x = torch.randn(2, 2, 6, 8, dtype=torch.float64, requires_grad=True)
    inputs = (x, subpixel.weight, subpixel.bias)
    assert torch.autograd.gradcheck(lambda x, w, b: subpixel(x), inputs)
    assert torch.autograd.gradgradcheck(lambda x, w, b: subpixel(x), inputs)


def test_subpixel_gradient_convolution_of_an_odd_size_is_the_ordinary_one():
    conv, subpixel = _conv_pair(1, 4, 5, 2)
    x = torch.randn(2, 1, 7, 9)
    grads = []
    for net in (conv, subpixel):
        x_ = x.clone().requires_grad_(True)
        net(x_).sum().backward()
        grads.append(x_.grad)
    assert grads[1].shape == (2, 1, 7, 9)
    assert torch.equal(grads[1], grads[0])


def test_subpixel_image_gradients_swaps_only_the_layer_that_reads_an_image():
    critic_net = critic("dcgan28", (3, 28, 28))
    keys = list(critic_net.state_dict())
    subpixel_image_gradients(critic_net)
    swapped = [type(m) for m in critic_net.modules() if "Conv" in type(m).__name__]
    assert swapped == [SubpixelGradientConv2d, nn.Conv2d, nn.Conv2d]
    assert list(critic_net.state_dict()) == keys
    with pytest.raises(ValueError, match="does not halve"):
        SubpixelGradientConv2d(nn.Conv2d(1, 4, 5, stride=1, padding=2))
