"""Rewrites that compute what the originals compute, faster in training.

``gans.models`` defines the networks as the papers write them; the trainer applies these rewrites
to its own copies. They add no parameters, so the networks' state dicts and run ids are unchanged.
Outputs, gradients and updates equal the originals' bit for bit in float32, except the outputs
and gradients of ``SubpixelConvTranspose2d`` and the input gradient of ``SubpixelGradientConv2d``,
which add the same products in another order (tests/test_speedups.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class GatedLeakyReLU(nn.Module):
    """LeakyReLU (ReLU when ``negative_slope`` is 0) computed as ``x * gate``, where the gate
    (1 where x > 0, else the slope) is a constant of the graph: ``x > 0`` carries no gradient.

    Why: a gradient penalty differentiates the critic's input gradient, and that gradient passes
    through each activation's backward. The derivative of ``nn.LeakyReLU``'s backward with respect
    to the activation's input is zero, but autograd does not know it: it sends those zeros back
    through every layer before the activation, one whole backward pass of the critic with weight
    gradients, per penalty. With the gate a constant of the graph, that pass is never built.

    Under bfloat16 autocast the gate is a bfloat16 number (0.2 becomes 0.2002), where
    ``nn.LeakyReLU`` multiplies by the float32 slope: some negative outputs differ in the last
    bfloat16 bit.
    """

    def __init__(self, negative_slope: float = 0.0):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A comparison carries no gradient: the gate is a constant of the graph. It is written
        # straight into a tensor of x's type: on the CPU, making the boolean x > 0 and then
        # converting it (or selecting with it) cost 4-14 times as much, and a boolean gate would be
        # converted again by every multiplication with it (forward, backward, double backward).
        gate = torch.gt(x, 0, out=torch.empty_like(x))  # 1 where x > 0, else 0
        slope = self.negative_slope
        if slope == 0:
            return x * gate
        if 0 < slope < 1:
            return x * gate.clamp_min_(slope)  # max(1, slope) = 1 and max(0, slope) = slope
        return x * torch.where(gate > 0, 1.0, slope).to(x.dtype)  # .to: where() gives float32

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


def _replace_modules(
    module: nn.Module, replacement: Callable[[nn.Module], nn.Module | None]
) -> nn.Module:
    """Replace (in place) every submodule for which ``replacement`` returns a module by that
    module; look inside the others. Returns: ``module``."""
    for name, child in module.named_children():
        new = replacement(child)
        if new is None:
            _replace_modules(child, replacement)
        else:
            setattr(module, name, new)
    return module


def gate_activations(module: nn.Module) -> nn.Module:
    """Replace every ``nn.ReLU`` and ``nn.LeakyReLU`` inside ``module`` (in place) by a
    ``GatedLeakyReLU`` with the same slope. Returns: ``module``."""

    def gated(child: nn.Module) -> nn.Module | None:
        if type(child) is nn.ReLU:
            return GatedLeakyReLU(0.0)
        if type(child) is nn.LeakyReLU:
            return GatedLeakyReLU(child.negative_slope)
        return None

    return _replace_modules(module, gated)


class SubpixelConvTranspose2d(nn.Module):
    """A stride-2 ``nn.ConvTranspose2d`` that doubles the spatial size (as every upsampling layer
    of the dcgan generators does), computed as an ordinary convolution into 4 x out_channels
    channels followed by ``pixel_shuffle``: each of the four output phases (even or odd row, even
    or odd column) is an ordinary convolution of the input with a sub-kernel of the transposed
    one (Shi et al. 2016, "Is the deconvolution layer the same as a convolutional layer?").

    Why: on the CPU, oneDNN's transposed convolution into few channels is slow: the generator's
    last layer (16 -> 1 channels at 14x14, batch 64) took 1.2 ms forward where this takes 0.47 ms,
    and 1.8 against 1.3 ms forward and backward. With many output channels it is the other way
    round (it computes 36 products per output where the transposed convolution computes 25), so
    ``subpixel_image_layers`` swaps only the layers that write an image.

    It holds the transposed convolution's own ``weight`` and ``bias``, so state dicts are
    unchanged. It adds the same products in another order: outputs and gradients equal the
    transposed convolution's up to float rounding, not bit for bit.
    """

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        if not _doubles_size(conv):
            raise ValueError(f"{conv} does not double the spatial size with stride 2")
        self.weight, self.bias = conv.weight, conv.bias
        taps, self.padding = _subpixel_taps(conv.kernel_size[0], conv.padding[0])
        self.register_buffer("taps", taps, persistent=False)

    def extra_repr(self) -> str:
        c_in, c_out, k = self.weight.shape[:3]
        return f"{c_in}, {c_out}, kernel_size={k}, doubling the size"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _subpixel_conv_transpose(x, self.weight, self.bias, self.taps, self.padding)


def _subpixel_taps(kernel_size: int, padding: int) -> tuple[torch.Tensor, int]:
    """For a size-doubling stride-2 transposed convolution: which kernel row (or column) each of
    the sub-kernels' taps reads, per output phase, and the sub-kernels' padding."""
    k, p = kernel_size, padding
    # Output row 2i + a sums input rows i + e weighted by kernel row a + p - 2e; rows outside
    # the kernel point at index k, a zero row appended in _subpixel_conv_transpose().
    reach = max(abs(e) for a in (0, 1) for e in range(-k, k + 1) if 0 <= a + p - 2 * e < k)
    taps = [
        [a + p - 2 * e if 0 <= a + p - 2 * e < k else k for e in range(-reach, reach + 1)]
        for a in (0, 1)
    ]
    return torch.tensor(taps), reach


def _subpixel_conv_transpose(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    taps: torch.Tensor,
    padding: int,
) -> torch.Tensor:
    """The size-doubling stride-2 transposed convolution of ``x`` with ``weight`` (c_in, c_out,
    k, k), as one convolution into 4 x c_out channels and a pixel shuffle."""
    c_in, c_out = weight.shape[:2]
    t = taps
    kernel = F.pad(weight, (0, 1, 0, 1))[:, :, t[:, None, :, None], t[None, :, None, :]]
    # (c_in, c_out, row phase, column phase, taps, taps) -> channel c * 4 + 2 * row + column,
    # the order pixel_shuffle reads
    kernel = kernel.permute(1, 2, 3, 0, 4, 5).reshape(4 * c_out, c_in, *kernel.shape[-2:])
    bias = None if bias is None else bias.repeat_interleave(4)
    phases = F.conv2d(x, kernel, bias, padding=padding)
    if c_out == 1:
        # pixel_shuffle is 7-10% faster from the contiguous layout than from channels_last, and
        # into one channel both layouts are the same. Into RGB the next convolution would then
        # reorder the image: 13% slower in all (docs/performance.md).
        phases = phases.contiguous()
    return F.pixel_shuffle(phases, 2)


def _doubles_size(conv: nn.ConvTranspose2d) -> bool:
    (k, k2), (s, s2), (p, p2), (o, o2) = (
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.output_padding,
    )
    return (
        (k, s, p, o) == (k2, s2, p2, o2)
        and s == 2
        and k + o == 2 * p + 2  # output size (H - 1) * 2 - 2p + k + o == 2H
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def subpixel_image_layers(module: nn.Module, max_channels: int = 3) -> nn.Module:
    """Replace (in place) every size-doubling ``nn.ConvTranspose2d`` inside ``module`` with at
    most ``max_channels`` output channels (the layers that write an image) by a
    ``SubpixelConvTranspose2d``. Returns: ``module``."""

    def subpixel(child: nn.Module) -> nn.Module | None:
        writes_image = type(child) is nn.ConvTranspose2d and child.out_channels <= max_channels
        return SubpixelConvTranspose2d(child) if writes_image and _doubles_size(child) else None

    return _replace_modules(module, subpixel)


class SubpixelGradientConv2d(nn.Module):
    """A stride-2 ``nn.Conv2d`` that halves an even spatial size (as the first layer of the dcgan
    critics does), with the gradient to its input computed as a ``SubpixelConvTranspose2d`` would:
    that gradient is the transposed convolution of the output gradient with the same weight.

    Why: the generator step sends the gradient back through the critic to the generated images,
    and for the layer that reads them oneDNN runs that slow transposed convolution into an image's
    few channels. The forward and the weight and bias gradients are the ordinary ones.

    Training differentiates it once. Under a gradient penalty the critic's backward is itself
    differentiated, and this layer could not tell that the penalty wants only its input gradient:
    it would compute its weight gradient for nothing, so ``subpixel_image_gradients`` is for
    critics trained without one. Outputs are the ``nn.Conv2d``'s; the input gradient equals its
    up to float rounding.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not _halves_size(conv):
            raise ValueError(f"{conv} does not halve the spatial size with stride 2")
        self.weight, self.bias = conv.weight, conv.bias
        self.padding = conv.padding[0]
        taps, self.subpixel_padding = _subpixel_taps(conv.kernel_size[0], self.padding)
        self.register_buffer("taps", taps, persistent=False)

    def extra_repr(self) -> str:
        c_out, c_in, k = self.weight.shape[:3]
        return f"{c_in}, {c_out}, kernel_size={k}, halving the size"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Without an input gradient (the critic's own step) the ordinary backward is used: it is
        # the faster one for the weight and bias gradients. An odd size would leave the sub-pixel
        # gradient one row or column short, and under autocast the backward would get a bfloat16
        # gradient and float32 weights.
        even = x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
        if x.requires_grad and even and not torch.is_autocast_enabled(x.device.type):
            return _Conv2dSubpixelInputGradient.apply(x, self.weight, self.bias, self)
        return F.conv2d(x, self.weight, self.bias, stride=2, padding=self.padding)


class _Conv2dSubpixelInputGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, layer: SubpixelGradientConv2d):
        ctx.save_for_backward(x, weight)
        ctx.layer = layer
        return F.conv2d(x, weight, bias, stride=2, padding=layer.padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        layer = ctx.layer
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _subpixel_conv_transpose(
                grad, weight, None, layer.taps, layer.subpixel_padding
            )
        if ctx.needs_input_grad[1]:
            grad_weight = torch.nn.grad.conv2d_weight(
                x, weight.shape, grad, stride=2, padding=layer.padding
            )
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None


def _halves_size(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` maps an even size H to H / 2, so that its input gradient is a
    size-doubling transposed convolution."""
    if isinstance(conv.padding, str):  # "valid" or "same"
        return False
    (k, k2), (s, s2), (p, p2) = conv.kernel_size, conv.stride, conv.padding
    return (
        (k, s, p) == (k2, s2, p2)
        and s == 2
        and k - 2 * p in (1, 2)  # (H + 2p - k) // 2 + 1 == H / 2 for even H
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def subpixel_image_gradients(module: nn.Module, max_channels: int = 3) -> nn.Module:
    """Replace (in place) every size-halving ``nn.Conv2d`` inside ``module`` with at most
    ``max_channels`` input channels (the layers that read an image) by a
    ``SubpixelGradientConv2d``. Returns: ``module``."""

    def subpixel(child: nn.Module) -> nn.Module | None:
        reads_image = type(child) is nn.Conv2d and child.in_channels <= max_channels
        return SubpixelGradientConv2d(child) if reads_image and _halves_size(child) else None

    return _replace_modules(module, subpixel)


class FlatParameters:
    """All parameters of ``module`` moved (in place, after any ``.to()``) into one flat tensor,
    ``parameter``, and their gradients into a second one, ``parameter.grad``.

    Why: an optimizer or a constraint given that one tensor does the few operations of its update
    once, where given the module's parameters it does them once per parameter tensor; for small
    networks that per-tensor cost is most of the update (RMSprop and weight clipping: about 0.3 ms
    of a 1.2 ms critic step of the 64-unit MLP). Adam, RMSprop and clipping work element by element,
    so the update is the same bit for bit.

    Each parameter keeps its shape and strides (channels_last included) as a view of
    ``parameter``, and its ``.grad`` is a view of the flat gradient, into which backward adds: call
    ``zero_grad()`` before each backward instead of the optimizer's. One difference from
    per-parameter updates: a parameter that gets no gradient in a step gets a zero one, which Adam
    still counts (every parameter of the built-in networks gets one in every step).
    """

    _of: weakref.WeakKeyDictionary[nn.Module, FlatParameters] = weakref.WeakKeyDictionary()

    def __init__(self, module: nn.Module):
        params = list(module.parameters())
        if len({(p.dtype, p.device) for p in params}) != 1:
            raise ValueError("FlatParameters needs parameters of one dtype on one device")
        dense = (torch.contiguous_format, torch.channels_last)
        if not all(any(p.is_contiguous(memory_format=f) for f in dense) for p in params):
            raise ValueError("FlatParameters needs contiguous or channels_last parameters")
        flat = params[0].new_empty(sum(p.numel() for p in params))
        grad = torch.zeros_like(flat)
        self._views = []  # (parameter, its view of the flat tensor, its view of the flat gradient)
        offset = 0
        for p in params:
            # dense strides start at the offset and cover exactly numel elements
            self._views.append(
                (
                    p,
                    torch.as_strided(flat, p.size(), p.stride(), offset),
                    torch.as_strided(grad, p.size(), p.stride(), offset),
                )
            )
            offset += p.numel()
        self.parameter = nn.Parameter(flat)
        self.parameter.grad = grad
        self.zero_grad()  # moves the values in
        FlatParameters._of[module] = self

    @torch.no_grad()
    def zero_grad(self) -> None:
        """Zero the flat gradient. Before that, put back any parameter that something else
        re-bound: a ``.grad`` replaced (``module.zero_grad()`` sets them to None) points at the
        flat gradient again, and values assigned with ``p.data = ...`` (instead of changed in
        place) are copied into the flat tensor, which the parameter views again."""
        for p, view, grad in self._views:
            if p.data_ptr() != view.data_ptr():
                view.copy_(p)
                p.data = view
            if p.grad is not grad:
                p.grad = grad
        self.parameter.grad.zero_()

    @staticmethod
    def of(module: nn.Module) -> FlatParameters | None:
        """The ``FlatParameters`` made of ``module``'s parameters, or None."""
        return FlatParameters._of.get(module)
