"""Penalties added to the critic loss."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from gans.registry import NamedPiece


@dataclass(frozen=True)
class PenaltyOutput:
    """value: the weighted penalty (a scalar to add to the critic loss); grad_norm: the mean norm of
    the critic's input gradient where the penalty looked, for the curves (NaN if not applicable)."""

    value: torch.Tensor
    grad_norm: torch.Tensor


class Penalty(NamedPiece, ABC):
    """Base class of critic penalties (the plugin interface)."""

    @abstractmethod
    def __call__(
        self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator
    ) -> PenaltyOutput:
        """Args: the critic, a real and a generated batch of the same shape (fake is detached), and
        the run's random generator (use it for any randomness so runs stay reproducible)."""


def interpolate(real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Points on lines between real and fake samples, one uniform coefficient per sample."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=rng, device=real.device, dtype=real.dtype)
    return torch.lerp(fake, real, alpha)


def input_gradient_norms(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of dD/dx, kept in the graph so a penalty on it can be back-propagated.

    Under ``torch.compile`` the gradient comes from ``torch.func.grad``: compiled code cannot be
    differentiated through ``autograd.grad(..., create_graph=True)``, while ``torch.func.grad``
    writes the same gradient as ordinary operations that it can trace and differentiate again.
    """
    if torch.compiler.is_compiling():
        grad = torch.func.grad(lambda x: critic(x).sum())(x.detach())
    else:
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)


class GradientPenalty(Penalty):
    """WGAN-GP's two-sided penalty lambda * E[(||grad D(x_hat)|| - 1)^2] at random interpolates
    x_hat between real and generated samples (Gulrajani et al. 2017, Algorithm 1).

    Args:
        weight: lambda; the paper uses 10.
    """

    name = "gradient-penalty"

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, critic, real, fake, rng):
        norms = input_gradient_norms(critic, interpolate(real, fake, rng))
        return PenaltyOutput(self.weight * (norms - 1).square().mean(), norms.detach().mean())
