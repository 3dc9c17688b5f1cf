"""Constraints applied to the critic's parameters after each critic step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from gans.speedups import FlatParameters


class Constraint(ABC):
    """Base class of critic constraints (the plugin interface)."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, critic: nn.Module) -> torch.Tensor:
        """Modify the critic's parameters in place (under no_grad). Returns: a scalar tensor, the
        fraction of parameters the constraint is holding at its boundary (for the curves)."""


class WeightClipping(Constraint):
    """WGAN's crude Lipschitz constraint: every critic parameter clamped to [-c, c] (Arjovsky et al.
    2017, Algorithm 1, c = 0.01)."""

    name = "weight-clipping"

    def __init__(self, clip_value: float):
        self.clip_value = clip_value

    @torch.no_grad()
    def __call__(self, critic):
        # Multi-tensor kernels (those the optimizers use) and one count over all the weights: a
        # handful of operations per step instead of four per parameter tensor. The trainer's critic
        # keeps its weights in one flat tensor (gans/speedups.py): then only that one is touched.
        flat = FlatParameters.of(critic)
        params = [flat.parameter] if flat is not None else list(critic.parameters())
        torch._foreach_clamp_min_(params, -self.clip_value)
        torch._foreach_clamp_max_(params, self.clip_value)
        # one tensor to count over; reshape, as channels_last weights have no flat view
        weights = params[0] if flat is not None else torch.cat([p.reshape(-1) for p in params])
        return (weights.abs() == self.clip_value).sum() / weights.numel()
