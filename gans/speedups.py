"""Rewrites of network pieces that compute the same numbers as the originals, faster in training.

``gans.models`` defines the networks as the papers write them; the trainer applies these rewrites
to its own copies. They hold no parameters, so checkpoints and run ids are unchanged, and their
outputs and gradients equal the originals' bit for bit in float32 (tests/test_speedups.py).
"""

from __future__ import annotations

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
