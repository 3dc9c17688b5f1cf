"""A strategy's hyperparameters as data: validated on creation, printable in reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is accepted."""


@dataclass(frozen=True)
class Check:
    """What a declared hyperparameter accepts: a kind (``int``, ``float`` or ``str``; ``float``
    takes integers too, never booleans), an optional closed range, or a set of choices."""

    kind: type
    low: float | None = None
    high: float | None = None
    above: float | None = None  # an open lower bound: values must be > above
    choices: tuple | None = None
    optional: bool = False  # None is accepted too

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.choices is not None:
            return value in self.choices
        if self.kind is float:
            ok = _is_number(value)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.kind)
        return (
            ok
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
            and (self.above is None or value > self.above)
        )

    def describe(self) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = {float: "a number", int: "an integer", str: "a string"}.get(
                self.kind, f"a {self.kind.__name__}"
            )
            bounds = [f">= {self.low}" if self.low is not None else None]
            bounds += [f"> {self.above}" if self.above is not None else None]
            bounds += [f"<= {self.high}" if self.high is not None else None]
            if any(bounds):
                text += " " + " and ".join(b for b in bounds if b)
        return text + (" or unset (None)" if self.optional else "")


def hyperparameter(default: Any, **check: Any) -> Any:
    """A hyperparameter field of a ``Hyperparameters`` subclass, validated whenever the
    hyperparameters are made or overridden (so a bad value in a suite file is bad input, before
    any run starts). ``check``: the arguments of ``Check`` (kind, low, high, above, choices,
    optional); kind defaults to the default's type. Example::

        gamma: float = gans.hyperparameter(10.0, low=0.0)
    """
    check.setdefault("kind", type(default) if default is not None else float)
    return dataclasses.field(default=default, metadata={"check": Check(**check)})


@dataclass(frozen=True)
class Hyperparameters:
    """What a loss strategy trains with. Strategies subclass this to add fields of their own.

    Every built-in strategy sets these from its paper; a run may override any of them.
    """

    optimizer: str  # "adam" or "rmsprop"; the same optimizer trains generator and critic
    lr: float  # learning rate of both networks
    betas: tuple[float, float] | None = None  # Adam's (beta1, beta2); None for RMSProp
    n_critic: int = 1  # critic steps per generator step
    penalty_weight: float | None = None  # weight of the critic penalty; None: no penalty
    clip_value: float | None = None  # bound of the critic's weights; None: no clipping

    def __post_init__(self):
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(self.betas))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(sorted(OPTIMIZERS))}, got {self.optimizer!r}"
            )
        _require(_is_number(self.lr) and self.lr > 0, "lr", "a number > 0", self.lr)
        if self.optimizer == "adam":
            ok = self.betas is not None and len(self.betas) == 2
            _require(
                ok and all(_is_number(b) and 0 <= b < 1 for b in self.betas),
                "betas",
                "two values in [0, 1)",
                self.betas,
            )
        _require(
            isinstance(self.n_critic, int)
            and not isinstance(self.n_critic, bool)
            and self.n_critic >= 1,
            "n_critic",
            "an integer >= 1",
            self.n_critic,
        )
        if self.penalty_weight is not None:
            _require(
                _is_number(self.penalty_weight) and self.penalty_weight >= 0,
                "penalty_weight",
                "a number >= 0",
                self.penalty_weight,
            )
        if self.clip_value is not None:
            _require(
                _is_number(self.clip_value) and self.clip_value > 0,
                "clip_value",
                "a number > 0",
                self.clip_value,
            )
        for f in dataclasses.fields(self):  # the fields declared with gans.hyperparameter
            if (check := f.metadata.get("check")) is not None:
                _require(
                    check.accepts(getattr(self, f.name)),
                    f.name,
                    check.describe(),
                    getattr(self, f.name),
                )

    def replace(self, overrides: Mapping[str, Any]) -> Hyperparameters:
        """A copy with ``overrides`` applied and validated; unknown fields are a ``ConfigError``."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown hyperparameter {', '.join(unknown)}; accepted: {', '.join(names)}"
            )
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](params, self)


FUSED_ADAM_DEVICES = ("cpu", "cuda")


def _adam(params, hp: Hyperparameters) -> torch.optim.Adam:
    # The fused kernel updates every parameter in one call: the same update as the default
    # per-parameter loop at a third of its cost on CPU (docs/performance.md).
    params = list(params)
    fused = all(p.device.type in FUSED_ADAM_DEVICES for p in params) or None
    return torch.optim.Adam(params, lr=hp.lr, betas=hp.betas, fused=fused)


def _rmsprop(params, hp: Hyperparameters) -> torch.optim.RMSprop:
    # RMSprop has no fused kernel; the multi-tensor one is still cheaper than the default loop.
    return torch.optim.RMSprop(params, lr=hp.lr, foreach=True)


OPTIMIZERS = {"adam": _adam, "rmsprop": _rmsprop}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(ok: bool, field: str, accepted: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{field} must be {accepted}, got {value!r}")
