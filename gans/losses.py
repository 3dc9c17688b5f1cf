"""Adversarial losses: what the critic and the generator minimise, given the critic's scores.

A loss sees only scores (one raw, unbounded critic output per sample), so the same critic network
serves every loss. Penalties and constraints live in their own modules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F

from gans.registry import NamedPiece


class Loss(NamedPiece, ABC):
    """Base class of adversarial losses (the plugin interface).

    Attributes:
        name: kebab-case name, shown in reports.
        estimates_wasserstein: True when ``-critic_loss`` estimates the Wasserstein-1 distance, so
            the trainer records it as the W estimate.
    """

    estimates_wasserstein: ClassVar[bool] = False

    @abstractmethod
    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Args: critic scores of shape (B,) for real and generated samples. Returns: a scalar."""

    @abstractmethod
    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """Args: critic scores of shape (B,) for generated samples. Returns: a scalar."""


class WassersteinLoss(Loss):
    """Kantorovich-Rubinstein dual: the critic maximises E[D(x)] - E[D(G(z))] (Arjovsky et al.
    2017)."""

    name = "wasserstein"
    estimates_wasserstein = True

    def critic_loss(self, real_scores, fake_scores):
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores):
        return -fake_scores.mean()


class JSLoss(Loss):
    """The original GAN's binary cross-entropy on logits (Goodfellow et al. 2014).

    Args:
        saturating: False (default) gives the non-saturating generator loss -log D(G(z)), which the
            paper recommends in practice; True gives the minimax form log(1 - D(G(z))).
    """

    name = "js"

    def __init__(self, saturating: bool = False):
        self.saturating = saturating

    def critic_loss(self, real_scores, fake_scores):
        # -log sigmoid(r) - log(1 - sigmoid(f)) via softplus, finite even for huge logits.
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores):
        if self.saturating:
            return -F.softplus(fake_scores).mean()
        return F.softplus(-fake_scores).mean()
