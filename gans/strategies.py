"""Loss strategies: the one thing that differs between the compared methods.

A strategy combines three named pieces, a loss (``gans.losses``), an optional penalty
(``gans.penalties``) and an optional constraint (``gans.constraints``), with its default
hyperparameters as data. WGAN-GP is the Wasserstein loss plus the gradient penalty; WGAN is the
Wasserstein loss plus weight clipping. The trainer only asks a strategy for its pieces and never
looks at its name.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gans.constraints import Constraint, WeightClipping
from gans.hyperparameters import Hyperparameters, hyperparameter
from gans.losses import JSLoss, Loss, WassersteinLoss
from gans.penalties import GradientPenalty, Penalty
from gans.registry import Registry, RegistryError


class StrategyError(ValueError):
    """A strategy's loss or penalty returned something the trainer cannot use."""


class Strategy(ABC):
    """Base class of loss strategies (the plugin interface).

    Subclasses set ``defaults`` (a ``Hyperparameters``, or a subclass of it with extra fields) and
    implement ``make_loss``; they may override ``make_penalty`` and ``make_constraint``. The pieces
    are built from the run's resolved hyperparameters, available as ``self.hparams``.

    Args:
        overrides: hyperparameters to change from ``defaults`` for this run.
    """

    defaults: ClassVar[Hyperparameters]

    def __init__(self, overrides: Mapping[str, Any] | None = None):
        self.hparams = self.defaults.replace(overrides or {})
        self.loss = self.make_loss()
        self.penalty = self.make_penalty()
        self.constraint = self.make_constraint()

    @abstractmethod
    def make_loss(self) -> Loss:
        """Returns: the adversarial loss."""

    def make_penalty(self) -> Penalty | None:
        """Returns: a penalty added to every critic loss, or None."""
        return None

    def make_constraint(self) -> Constraint | None:
        """Returns: a constraint applied to the critic after every critic step, or None."""
        return None

    def pieces(self) -> dict[str, str | None]:
        """The names of the loss, penalty and constraint, for reports."""
        return {
            "loss": self.loss.name,
            "penalty": self.penalty.name if self.penalty else None,
            "constraint": self.constraint.name if self.constraint else None,
        }


@dataclass(frozen=True)
class GANHyperparameters(Hyperparameters):
    # "minimax" is the saturating form of the 2014 paper
    generator_loss: str = hyperparameter("non-saturating", choices=("non-saturating", "minimax"))


class GAN(Strategy):
    """The original GAN (Goodfellow et al. 2014) with DCGAN's Adam settings (Radford et al.
    2016)."""

    defaults = GANHyperparameters(optimizer="adam", lr=2e-4, betas=(0.5, 0.999), n_critic=1)

    def make_loss(self):
        return JSLoss(saturating=self.hparams.generator_loss == "minimax")


class WGAN(Strategy):
    """WGAN with weight clipping (Arjovsky et al. 2017, Algorithm 1 defaults)."""

    defaults = Hyperparameters(optimizer="rmsprop", lr=5e-5, n_critic=5, clip_value=0.01)

    def make_loss(self):
        return WassersteinLoss()

    def make_constraint(self):
        if self.hparams.clip_value is None:
            return None
        return WeightClipping(self.hparams.clip_value)


class WGANGP(Strategy):
    """WGAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1 defaults)."""

    defaults = Hyperparameters(
        optimizer="adam", lr=1e-4, betas=(0.5, 0.9), n_critic=5, penalty_weight=10.0
    )

    def make_loss(self):
        return WassersteinLoss()

    def make_penalty(self):
        if not self.hparams.penalty_weight:
            return None
        return GradientPenalty(self.hparams.penalty_weight)


def _check_strategy(name: str, entry: object) -> None:
    if not (inspect.isclass(entry) and issubclass(entry, Strategy)):
        raise RegistryError(
            f"loss strategy {name!r} must be a subclass of gans.strategies.Strategy, got {entry!r}"
        )
    if inspect.isabstract(entry):
        missing = ", ".join(sorted(entry.__abstractmethods__))
        raise RegistryError(
            f"loss strategy {name!r} ({entry.__qualname__}) does not implement {missing}"
        )
    if not isinstance(getattr(entry, "defaults", None), Hyperparameters):
        raise RegistryError(
            f"loss strategy {name!r} ({entry.__qualname__}) must set `defaults` to a "
            "gans.hyperparameters.Hyperparameters"
        )


STRATEGIES: Registry[type[Strategy]] = Registry(
    "loss strategy",
    _check_strategy,
    unknown_hint="a plugin's strategies load with --plugin FILE_OR_MODULE (gans.load_plugin) or "
    "from an installed package's entry point (group gans.losses)",
)


def register_strategy(
    name: str, cls: type[Strategy], provider: str | None = None
) -> type[Strategy]:
    """Register a strategy class under a kebab-case name.

    Raises:
        RegistryError: malformed or duplicate name, not a Strategy subclass, abstract methods left
            unimplemented, or no ``defaults``.
    """
    return STRATEGIES.register(name, cls, provider)


def make_strategy(name: str, overrides: Mapping[str, Any] | None = None) -> Strategy:
    """The registered strategy ``name`` with ``overrides`` applied to its defaults."""
    return STRATEGIES.get(name)(overrides)


def default_hyperparameters(name: str) -> dict[str, Any]:
    return dataclasses.asdict(STRATEGIES.get(name).defaults)


register_strategy("gan", GAN)
register_strategy("wgan", WGAN)
register_strategy("wgan-gp", WGANGP)
