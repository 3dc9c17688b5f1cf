"""A strategy's hyperparameters as data: validated on creation, printable in reports."""

from __future__ import annotations

import dataclasses
import functools
import math
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
    # critic steps per generator step: a number, or a CriticSchedule (made from a schedule's
    # table, see critic_schedule) that changes it over training
    n_critic: int | CriticSchedule = 1
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
        if not _count(self.n_critic):
            schedule = critic_schedule(self.n_critic)
            # A constant schedule is its number, as the trainer and the report treat it.
            object.__setattr__(self, "n_critic", schedule.constant or schedule)
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
        """Plain values by field name (a schedule as its table): what run ids hash."""
        return {**dataclasses.asdict(self), "n_critic": as_plain(self.n_critic)}

    @property
    def critic_schedule(self) -> CriticSchedule:
        """n_critic as a schedule, a constant one included."""
        return critic_schedule(self.n_critic)

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


# --- n_critic schedules and epoch budgets ---------------------------------------------------------
# Critic steps per generator iteration that change over training, and budgets in epochs.
#
# ``n_critic`` is a number or one of two schedule forms (docs/suites.md shows them in a suite):
#
# - piecewise: ``{unit = "epoch" | "gen_iter", steps = [[0, 5], [40, 1]]}``, n_critic 5 from the
#   start, 1 from epoch (or generator iteration) 40 on, as popular WGAN-GP MNIST code does;
# - warm-up/periodic, the original WGAN code's (``main.py``: ``Diters = 100`` while
#   ``gen_iterations < 25`` or when ``gen_iterations % 500 == 0``, else 5):
#   ``{base = 5, burst = 100, warmup = 25, every = 500}``.
#
# An epoch is one pass of the train split in critic batches: ``ceil(train rows / batch size)``
# critic steps. Generator iteration g belongs to epoch ``critic steps before g // that``, and a
# budget of E epochs trains every generator iteration that starts before the critic has taken
# E epochs' batches.

UNITS = ("epoch", "gen_iter")
PIECEWISE_KEYS = {"unit", "steps"}
PERIODIC_KEYS = {"base", "burst", "warmup", "every"}
EXAMPLES = (
    "an integer >= 1, a piecewise schedule {unit = 'epoch', steps = [[0, 5], [40, 1]]} or a "
    "warm-up/periodic one {base = 5, burst = 100, warmup = 25, every = 500}"
)


@dataclass(frozen=True)
class CriticSchedule:
    """n_critic over training; ``steps_at`` gives it for one generator iteration. Made by
    ``critic_schedule`` from a number or a schedule's table."""

    unit: str = "gen_iter"  # what the starts of ``steps`` count
    steps: tuple[tuple[int, int], ...] = ((0, 1),)  # (start, n_critic), starts ascending from 0
    burst: int | None = None  # the warm-up/periodic form: n_critic of its burst iterations ...
    warmup: int = 0  # ... the first ``warmup`` generator iterations ...
    every: int | None = None  # ... and every ``every``-th one after them

    @property
    def constant(self) -> int | None:
        """n_critic when it never changes, else None."""
        return self.steps[0][1] if len(self.steps) == 1 and self.burst is None else None

    @property
    def per_epoch(self) -> bool:
        return self.unit == "epoch"

    def steps_at(self, gen_iter: int, epoch: int = 0) -> int:
        """Critic steps of generator iteration ``gen_iter`` (from 0), which falls in ``epoch``."""
        if self.burst is not None and (
            gen_iter < self.warmup or (self.every is not None and gen_iter % self.every == 0)
        ):
            return self.burst
        at = epoch if self.per_epoch else gen_iter
        return next(n for start, n in reversed(self.steps) if start <= at)

    def critic_steps(self, gen_iters: int, batches_per_epoch: int = 1) -> int:
        """Critic steps over the first ``gen_iters`` generator iterations."""
        if (n := self.constant) is not None:
            return n * gen_iters
        done = 0
        for g in range(gen_iters):
            done += self.steps_at(g, done // batches_per_epoch)
        return done

    def describe(self) -> str:
        """One line for reports, e.g. ``5, then 1 from epoch 40``."""
        if self.burst is not None:
            text = f"{self.burst} for the first {self.warmup} generator iterations"
            if self.every is not None:
                text += f" and every {self.every}th"
            return f"{text}, else {self.steps[0][1]}"
        unit = "epoch" if self.per_epoch else "generator iteration"
        parts = [str(self.steps[0][1])]
        parts += [f"{n} from {unit} {start}" for start, n in self.steps[1:]]
        return ", then ".join(parts)


@functools.lru_cache(maxsize=256)
def epochs_to_gen_iters(epochs: int, batches_per_epoch: int, schedule: CriticSchedule) -> int:
    """Generator iterations of a budget of ``epochs`` epochs, as the comment above
    ``CriticSchedule`` defines them."""
    batches = epochs * batches_per_epoch
    if (n := schedule.constant) is not None:
        return math.ceil(batches / n)
    gen_iter = done = 0
    while done < batches:
        done += schedule.steps_at(gen_iter, done // batches_per_epoch)
        gen_iter += 1
    return gen_iter


def batches_per_epoch(train_rows: int, batch_size: int) -> int:
    """Critic batches in one pass of a train split of ``train_rows`` rows."""
    return math.ceil(train_rows / batch_size)


def critic_schedule(value: Any) -> CriticSchedule:
    """The schedule of an ``n_critic`` value: a number, or a piecewise or warm-up/periodic table
    (``as_plain`` gives one back in this form).

    Raises:
        ConfigError: one line saying what is wrong and which forms are accepted.
    """
    if isinstance(value, CriticSchedule):
        return value
    if _count(value):
        return CriticSchedule(steps=((0, value),))
    if not isinstance(value, Mapping):
        raise ConfigError(f"n_critic must be {EXAMPLES}, got {value!r}")
    keys = set(value)
    if keys <= PIECEWISE_KEYS:
        return _piecewise(value)
    if keys <= PERIODIC_KEYS:
        return _periodic(value)
    unknown = sorted(keys - PIECEWISE_KEYS - PERIODIC_KEYS) or sorted(keys)
    raise ConfigError(
        f"n_critic: unknown or mixed key {', '.join(unknown)}; a schedule is "
        f"{{{', '.join(sorted(PIECEWISE_KEYS))}}} or {{{', '.join(sorted(PERIODIC_KEYS))}}}"
    )


def as_plain(n_critic: int | CriticSchedule) -> int | dict[str, Any]:
    """``n_critic`` as a number or a JSON-able table (what run ids hash and tables record)."""
    if isinstance(n_critic, CriticSchedule):
        if n_critic.burst is not None:
            return {
                "base": n_critic.steps[0][1],
                "burst": n_critic.burst,
                "warmup": n_critic.warmup,
                "every": n_critic.every,
            }
        return {"unit": n_critic.unit, "steps": [list(s) for s in n_critic.steps]}
    return n_critic


def _piecewise(value: Mapping[str, Any]) -> CriticSchedule:
    unit = value.get("unit")
    if unit not in UNITS:
        raise ConfigError(f"n_critic: unit must be one of {', '.join(UNITS)}, got {unit!r}")
    steps = value.get("steps")
    if not (
        isinstance(steps, (list, tuple))
        and steps
        and all(
            isinstance(s, (list, tuple)) and len(s) == 2 and _whole(s[0]) and _count(s[1])
            for s in steps
        )
    ):
        raise ConfigError(
            "n_critic: steps must be [start, n_critic] pairs, starts integers >= 0 and n_critic "
            f"integers >= 1, e.g. [[0, 5], [40, 1]]; got {steps!r}"
        )
    starts = [s[0] for s in steps]
    if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
        raise ConfigError(
            f"n_critic: the starts of steps must begin at 0 and increase, got {starts}"
        )
    return CriticSchedule(unit=unit, steps=tuple((int(a), int(n)) for a, n in steps))


def _periodic(value: Mapping[str, Any]) -> CriticSchedule:
    for key, check, accepted in (
        ("base", _count, "an integer >= 1"),
        ("burst", _count, "an integer >= 1"),
        ("warmup", _whole, "an integer >= 0"),
    ):
        if not check(value.get(key)):
            raise ConfigError(f"n_critic: {key} must be {accepted}, got {value.get(key)!r}")
    every = value.get("every")
    if every is not None and not _count(every):
        raise ConfigError(f"n_critic: every must be an integer >= 1 or left out, got {every!r}")
    return CriticSchedule(
        steps=((0, value["base"]),), burst=value["burst"], warmup=value["warmup"], every=every
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> bool:
    return _whole(value) and value >= 1
