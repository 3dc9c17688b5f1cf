"""Constraints applied to the critic's parameters after each critic step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from gans.registry import NamedPiece


class Constraint(NamedPiece, ABC):
    """Base class of critic constraints (the plugin interface).

    The trainer calls the constraint after every critic update with the critic's parameters, to be
    changed in place (a new tensor in place of a parameter is refused: the optimizer would not see
    it). A constraint that treats every element alike (``elementwise = True``, as clipping does)
    may be given them as one flat tensor instead, when the trainer keeps them in one
    (gans/speedups.py): the same update in a few operations.
    """

    elementwise: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, parameters: list[torch.Tensor]) -> torch.Tensor:
        """Modify ``parameters`` in place (the trainer calls this under no_grad). Returns: a scalar
        tensor, the fraction of parameters held at the constraint's boundary (for the curves)."""


class WeightClipping(Constraint):
    """WGAN's crude Lipschitz constraint: every critic parameter clamped to [-c, c] (Arjovsky et al.
    2017, Algorithm 1, c = 0.01)."""

    name = "weight-clipping"
    elementwise = True

    def __init__(self, clip_value: float):
        self.clip_value = clip_value

    @torch.no_grad()
    def __call__(self, parameters):
        # Multi-tensor kernels (those the optimizers use) and one count over all the weights: a
        # handful of operations per step instead of four per parameter tensor.
        torch._foreach_clamp_min_(parameters, -self.clip_value)
        torch._foreach_clamp_max_(parameters, self.clip_value)
        # one tensor to count over; reshape, as channels_last weights have no flat view
        weights = (
            torch.cat([p.reshape(-1) for p in parameters])
            if len(parameters) > 1
            else (parameters[0].reshape(-1))
        )
        return (weights.abs() == self.clip_value).sum() / weights.numel()
