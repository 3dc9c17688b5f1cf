"""Constraints applied to the critic's parameters after each critic step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn


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
        params = list(critic.parameters())
        for p in params:
            p.clamp_(-self.clip_value, self.clip_value)
        at_boundary = sum((p.abs() == self.clip_value).sum() for p in params)
        return at_boundary / sum(p.numel() for p in params)
