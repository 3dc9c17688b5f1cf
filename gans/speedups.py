"""Rewrites that compute the same numbers as the originals, faster in training.

``gans.models`` defines the networks as the papers write them; the trainer applies these rewrites
to its own copies. They add no parameters, so the networks' state dicts and run ids are unchanged,
and outputs, gradients and updates equal the originals' bit for bit in float32
(tests/test_speedups.py).
"""

from __future__ import annotations

import weakref

import torch
from torch import nn


class GatedLeakyReLU(nn.Module):
    """LeakyReLU (ReLU when ``negative_slope`` is 0) computed as ``x * gate``, where the gate
    (1 where x > 0, else the slope) is taken from the detached input.

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
        # .to: where() of two Python numbers is float32; under autocast x may be bfloat16
        return x * torch.where(x.detach() > 0, 1.0, self.negative_slope).to(x.dtype)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


def gate_activations(module: nn.Module) -> nn.Module:
    """Replace every ``nn.ReLU`` and ``nn.LeakyReLU`` inside ``module`` (in place) by a
    ``GatedLeakyReLU`` with the same slope. Returns: ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.ReLU:
            setattr(module, name, GatedLeakyReLU(0.0))
        elif type(child) is nn.LeakyReLU:
            setattr(module, name, GatedLeakyReLU(child.negative_slope))
        else:
            gate_activations(child)
    return module


_FLAT_PARAMETERS: weakref.WeakKeyDictionary[nn.Module, nn.Parameter] = weakref.WeakKeyDictionary()


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move every parameter of ``module`` (in place, after any ``.to()``) into one flat tensor,
    and its gradient into a second one, and return a parameter spanning the first whose ``.grad``
    spans the second.

    Why: an optimizer or a constraint given that one tensor does the few operations of its update
    once, where given the module's parameters it does them once per parameter tensor; for small
    networks that per-tensor cost is most of the update (RMSprop and weight clipping: about 0.3 ms
    of a 1.2 ms critic step of the 64-unit MLP). Adam, RMSprop and clipping work element by element,
    so the update is the same bit for bit.

    Each parameter keeps its shape and strides (channels_last included) as a view, and its
    ``.grad`` is a view of the flat gradient, into which backward adds: zero the flat gradient
    (``.grad.zero_()``) before each backward instead of setting gradients to None. One difference
    from per-parameter updates: a parameter that gets no gradient in a step gets a zero one, which
    Adam still counts (every parameter of the built-in networks gets one in every step).
    """
    params = list(module.parameters())
    if len({(p.dtype, p.device) for p in params}) != 1:
        raise ValueError("flatten_parameters needs parameters of one dtype on one device")
    dense = (torch.contiguous_format, torch.channels_last)
    if not all(any(p.is_contiguous(memory_format=f) for f in dense) for p in params):
        raise ValueError("flatten_parameters needs contiguous or channels_last parameters")
    flat = params[0].new_empty(sum(p.numel() for p in params))
    grad = torch.zeros_like(flat)
    offset = 0
    with torch.no_grad():
        for p in params:
            # dense strides start at the storage offset and cover exactly numel elements
            view = torch.as_strided(flat, p.size(), p.stride(), offset)
            view.copy_(p)
            p.data = view
            p.grad = torch.as_strided(grad, p.size(), p.stride(), offset)
            offset += p.numel()
    flat_parameter = nn.Parameter(flat)
    flat_parameter.grad = grad
    _FLAT_PARAMETERS[module] = flat_parameter
    return flat_parameter


def flat_parameter(module: nn.Module) -> nn.Parameter | None:
    """The flat parameter ``flatten_parameters`` made of ``module``'s parameters, or None."""
    return _FLAT_PARAMETERS.get(module)
