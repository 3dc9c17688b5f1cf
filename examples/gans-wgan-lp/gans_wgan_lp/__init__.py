"""WGAN-LP: the Wasserstein loss with a one-sided Lipschitz penalty (Petzka, Fischer and Lukovnikov,
"On the regularization of Wasserstein GANs", ICLR 2018).

WGAN-GP pushes the critic's gradient norm towards 1 everywhere on the interpolates; the
Lipschitz constraint only asks for at most 1, so WGAN-LP penalises norms above 1 only:
lambda * E[max(0, |grad D(x_hat)| - 1)^2]. Everything else is the benchmark's own: the
Wasserstein loss and the interpolation between real and generated samples.
"""

import torch

import gans
from gans.penalties import input_gradient_norms, interpolation_weights


class LipschitzPenalty(gans.Penalty):
    """One-sided penalty on the critic's input-gradient norm at random interpolates. Written as
    draw and apply, so that its runs can train stacked (docs/plugins.md)."""

    name = "lipschitz-penalty"

    def __init__(self, weight: float):
        self.weight = weight

    def draw(self, real, fake, rng):
        return (interpolation_weights(real, rng),)

    def apply(self, critic, real, fake, draws):
        (alpha,) = draws
        norms = input_gradient_norms(critic, torch.lerp(fake, real, alpha))
        value = self.weight * (norms - 1).clamp(min=0).square().mean()
        return gans.PenaltyOutput(value, norms.detach().mean())


class WGANLP(gans.Strategy):
    """WGAN-LP with the paper's settings, which are WGAN-GP's (Adam 1e-4, betas (0.5, 0.9), five
    critic steps), and lambda 10; override any of them per run."""

    defaults = gans.Hyperparameters(
        optimizer="adam", lr=1e-4, betas=(0.5, 0.9), n_critic=5, penalty_weight=10.0
    )

    def make_loss(self):
        return gans.WassersteinLoss()

    def make_penalty(self):
        return LipschitzPenalty(self.hparams.penalty_weight)
