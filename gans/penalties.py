"""Penalties added to the critic loss."""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gans.registry import NamedPiece

Critic = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PenaltyOutput:
    """value: the weighted penalty (a scalar to add to the critic loss); grad_norm: the mean norm of
    the critic's input gradient where the penalty looked, for the curves (NaN if not applicable)."""

    value: torch.Tensor
    grad_norm: torch.Tensor


class Penalty(NamedPiece, ABC):
    """Base class of critic penalties (the plugin interface).

    Write a penalty as two methods: ``draw``, which takes its random numbers from the run's
    generator, and ``apply``, which computes it from them with tensor operations only. Split so,
    a penalty trains stacked (``gans.StackedTrainer``): the trainer draws each run's numbers from
    that run's own generator, then computes every run's penalty in one batched call. A penalty
    that overrides ``__call__`` instead still trains, but only as separate runs.
    """

    def draw(
        self, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator
    ) -> tuple[torch.Tensor, ...]:
        """The penalty's random numbers for this batch, drawn from ``rng`` (none by default).

        Args: a real and a generated batch of the same shape, and the run's random generator.
        Returns: a tuple of tensors, each with the batch as its first dimension."""
        return ()

    def apply(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        draws: tuple[torch.Tensor, ...],
    ) -> PenaltyOutput:
        """Args: the critic (a callable from a batch to its scores), the batches, and what
        ``draw`` returned for them. Use tensor operations only, no Python branch on a tensor's
        value: stacked runs call it under ``torch.func.vmap``."""
        raise NotImplementedError(f"{type(self).__name__} implements neither apply nor __call__")

    def __call__(
        self, critic: Critic, real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator
    ) -> PenaltyOutput:
        """Args: the critic, a real and a generated batch of the same shape (fake is detached), and
        the run's random generator (use it for any randomness so runs stay reproducible)."""
        return self.apply(critic, real, fake, self.draw(real, fake, rng))

    @property
    def stackable(self) -> bool:
        """Whether it is written as ``draw`` and ``apply`` (so it can train stacked)."""
        return type(self).__call__ is Penalty.__call__


def interpolation_weights(real: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """One uniform coefficient per sample, shaped to broadcast over the sample's dimensions."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    # Drawn in float32 whatever the data's dtype: an fp64 run draws the fp32 run's numbers.
    draws = torch.rand(shape, generator=rng, device=real.device, dtype=torch.float32)
    return draws.to(real.dtype)


def interpolate(real: torch.Tensor, fake: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Points on lines between real and fake samples, one uniform coefficient per sample."""
    return torch.lerp(fake, real, interpolation_weights(real, rng))


def input_gradient_norms(critic: Critic, x: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of dD/dx, kept in the graph so a penalty on it can be back-propagated.

    Under ``torch.compile`` and inside ``torch.func`` transforms (stacked runs) the gradient comes
    from ``torch.func.grad``: neither can differentiate ``autograd.grad(..., create_graph=True)``,
    while ``torch.func.grad`` writes the same gradient as ordinary operations that they can trace
    and differentiate again.
    """
    if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
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

    def draw(self, real, fake, rng):
        return (interpolation_weights(real, rng),)

    def apply(self, critic, real, fake, draws):
        (alpha,) = draws
        norms = input_gradient_norms(critic, torch.lerp(fake, real, alpha))
        return PenaltyOutput(self.weight * (norms - 1).square().mean(), norms.detach().mean())
