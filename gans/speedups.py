"""Rewrites that compute what the originals compute, bit for bit in float32, faster in training.

``gans.models`` defines the networks as the papers write them; ``prepare`` applies these rewrites
to the trainer's networks and says which it applied, for the run's record:

- ``gated-activations`` (only with a gradient penalty): every ReLU and LeakyReLU of the critic
  becomes a ``GatedLeakyReLU``, whose double backward skips a pass of zeros through the critic;
- ``flat-parameters`` (only with RMSprop): each network's parameters are moved into one flat
  tensor, so that the optimizer and an element-wise constraint update one tensor per step.

They add no parameters, so state dicts and run ids are unchanged, and the outputs, gradients and
updates equal the originals' bit for bit in float32, at any thread count (tests/test_speedups.py,
tests/test_trainer.py). Flat parameters are not used with Adam: the fused Adam kernel rounds
differently in its vectorised and its scalar code, and which elements each takes depends on where
one tensor ends and the next begins (and on the thread split), so one flat tensor and the separate
parameters drift apart by ~1e-9 per step; RMSprop's multi-tensor kernel does not.
``Trainer(..., speedups=False)`` (``benchmarks.run --no-speedups``) trains the plain networks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

_log = logging.getLogger(__name__)

GATED_ACTIVATIONS = "gated-activations"
FLAT_PARAMETERS = "flat-parameters"
# The optimizers whose update of an element does not depend on which tensor holds it.
FLATTENED_OPTIMIZERS = ("rmsprop",)


class GatedLeakyReLU(nn.Module):
    """LeakyReLU (ReLU when ``negative_slope`` is 0) computed as ``x * gate``, where the gate
    (1 where x > 0, else the slope) is a constant of the graph: ``x > 0`` carries no gradient.

    Why: a gradient penalty differentiates the critic's input gradient, and that gradient passes
    through each activation's backward. The derivative of ``nn.LeakyReLU``'s backward with respect
    to the activation's input is zero, but autograd does not know it: it sends those zeros back
    through every layer before the activation, one whole backward pass of the critic with weight
    gradients, per penalty. With the gate a constant of the graph, that pass is never built.

    Under bfloat16 autocast the gate is a bfloat16 number (0.2 becomes 0.2002), where
    ``nn.LeakyReLU`` multiplies by the float32 slope: some negative outputs differ in the last
    bfloat16 bit.
    """

    def __init__(self, negative_slope: float = 0.0):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A comparison carries no gradient: the gate is a constant of the graph. It is written
        # straight into a tensor of x's type: on the CPU, making the boolean x > 0 and then
        # converting it (or selecting with it) cost 4-14 times as much, and a boolean gate would be
        # converted again by every multiplication with it (forward, backward, double backward).
        if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
            # vmap (stacked runs) has no batching rule for out=, compiled code fuses it anyway.
            gate = x.detach().gt(0).to(x.dtype)
        else:
            gate = torch.gt(x, 0, out=torch.empty_like(x))  # 1 where x > 0, else 0
        slope = self.negative_slope
        if slope == 0:
            return x * gate
        if 0 < slope < 1:
            return x * gate.clamp_min_(slope)  # max(1, slope) = 1 and max(0, slope) = slope
        return x * torch.where(gate > 0, 1.0, slope).to(x.dtype)  # .to: where() gives float32

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


def _replace_modules(
    module: nn.Module, replacement: Callable[[nn.Module], nn.Module | None]
) -> nn.Module:
    """Replace (in place) every submodule for which ``replacement`` returns a module by that
    module; look inside the others. Returns: ``module``."""
    for name, child in module.named_children():
        new = replacement(child)
        if new is None:
            _replace_modules(child, replacement)
        else:
            setattr(module, name, new)
    return module


def gate_activations(module: nn.Module) -> nn.Module:
    """Replace every ``nn.ReLU`` and ``nn.LeakyReLU`` inside ``module`` (in place) by a
    ``GatedLeakyReLU`` with the same slope. Returns: ``module``."""

    def gated(child: nn.Module) -> nn.Module | None:
        if type(child) is nn.ReLU:
            return GatedLeakyReLU(0.0)
        if type(child) is nn.LeakyReLU:
            return GatedLeakyReLU(child.negative_slope)
        return None

    return _replace_modules(module, gated)


class FlatParameters:
    """All parameters of ``module`` moved (in place, after any ``.to()``) into one flat tensor,
    ``parameter``, and their gradients into a second one, ``parameter.grad``.

    Why: an optimizer or a constraint given that one tensor does the few operations of its update
    once, where given the module's parameters it does them once per parameter tensor; for small
    networks that per-tensor cost is most of the update (RMSprop and weight clipping: about 0.3 ms
    of a 1.2 ms critic step of the 64-unit MLP). Adam, RMSprop and clipping work element by element,
    so the update is the same bit for bit.

    Each parameter keeps its shape and strides (channels_last included) as a view of
    ``parameter``, and its ``.grad`` is a view of the flat gradient, into which backward adds: call
    ``zero_grad()`` before each backward instead of the optimizer's. One difference from
    per-parameter updates: a parameter that gets no gradient in a step gets a zero one, which Adam
    still counts (every parameter of the built-in networks gets one in every step).
    """

    def __init__(self, module: nn.Module):
        params = list(module.parameters())
        if not params:
            raise ValueError("FlatParameters needs at least one parameter")
        if len({(p.dtype, p.device) for p in params}) != 1:
            raise ValueError("FlatParameters needs parameters of one dtype on one device")
        dense = (torch.contiguous_format, torch.channels_last)
        if not all(any(p.is_contiguous(memory_format=f) for f in dense) for p in params):
            raise ValueError("FlatParameters needs contiguous or channels_last parameters")
        flat = params[0].new_empty(sum(p.numel() for p in params))
        grad = torch.zeros_like(flat)
        self._views = []  # (parameter, its view of the flat tensor, its view of the flat gradient)
        offset = 0
        for p in params:
            # dense strides start at the offset and cover exactly numel elements
            self._views.append(
                (
                    p,
                    torch.as_strided(flat, p.size(), p.stride(), offset),
                    torch.as_strided(grad, p.size(), p.stride(), offset),
                )
            )
            offset += p.numel()
        self.parameter = nn.Parameter(flat)
        self.parameter.grad = grad
        self.module = module
        self.zero_grad()  # moves the values in

    @property
    def optimized(self) -> list[torch.Tensor]:
        """What the optimizer steps: the one flat tensor."""
        return [self.parameter]

    def constrained(self, elementwise: bool) -> list[torch.Tensor]:
        """What a constraint gets: the flat tensor when it works element by element (the same
        update, once), else the module's parameters, views of it with their layers' shapes."""
        return [self.parameter] if elementwise else [p for p, _, _ in self._views]

    def check_unchanged(self) -> None:
        _check_unchanged(self.module, [p for p, _, _ in self._views])

    def per_parameter(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat``, a tensor laid out like ``parameter`` (an optimizer state), one per
        module parameter with its shape and strides, in the module's order."""
        return [
            torch.as_strided(flat, view.size(), view.stride(), view.storage_offset())
            for _, view, _ in self._views
        ]

    @torch.no_grad()
    def zero_grad(self) -> None:
        """Zero the flat gradient. Before that, put back any parameter that something else
        re-bound: a ``.grad`` replaced (``module.zero_grad()`` sets them to None) points at the
        flat gradient again, and values assigned with ``p.data = ...`` (instead of changed in
        place) are copied into the flat tensor, which the parameter views again."""
        for p, view, grad in self._views:
            if p.data_ptr() != view.data_ptr():
                view.copy_(p)
                p.data = view
            if p.grad is not grad:
                p.grad = grad
        self.parameter.grad.zero_()


class ModuleParameters:
    """The module's own parameters, trained one tensor at a time: what ``FlatParameters`` stands
    in for, used without the speedups or where the parameters cannot be flattened."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.parameters = list(module.parameters())

    @property
    def optimized(self) -> list[torch.Tensor]:
        return self.parameters

    def constrained(self, elementwise: bool) -> list[torch.Tensor]:
        return self.parameters

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    def check_unchanged(self) -> None:
        _check_unchanged(self.module, self.parameters)


def _check_unchanged(module: nn.Module, trained: list[torch.Tensor]) -> None:
    """Refuse a parameter object that something (a constraint) put in place of one the optimizer
    holds: the optimizer would go on updating the old one, leaving the layer untrained."""
    for (name, p), held in zip(module.named_parameters(), trained, strict=False):
        if p is not held:
            raise RuntimeError(
                f"parameter {name!r} of the {type(module).__name__} was replaced by a new "
                "tensor during training, so the optimizer would no longer update it; change "
                "parameters in place instead (under torch.no_grad(): p.clamp_(...), p.copy_(...))"
            )
    if len(list(module.parameters())) != len(trained):
        raise RuntimeError(
            f"the {type(module).__name__}'s parameters were added or removed during training"
        )


TrainedParameters = FlatParameters | ModuleParameters


@dataclass
class Prepared:
    """The networks to train, the parameters the optimizers and constraint work on, and the
    names of the rewrites applied (``GATED_ACTIVATIONS``, ``FLAT_PARAMETERS``), for the record."""

    generator: nn.Module
    critic: nn.Module
    generator_parameters: TrainedParameters
    critic_parameters: TrainedParameters
    applied: list[str]


def prepare(
    generator: nn.Module,
    critic: nn.Module,
    device: torch.device,
    penalty: bool,
    optimizer: str,
    enabled: bool = True,
) -> Prepared:
    """Move the networks to ``device`` and, when ``enabled``, apply the rewrites that fit:
    gated critic activations when there is a ``penalty`` (without one they would only cost time),
    and, when the ``optimizer`` (a ``Hyperparameters.optimizer`` name) is one of
    ``FLATTENED_OPTIMIZERS``, flat parameters for each network whose parameters can be flattened
    (one dtype, dense); a network whose parameters cannot be trains per parameter, with a one-line
    log note.

    Returns: the networks (changed in place) and what was applied, in that order."""
    applied = []
    if enabled and penalty:
        critic = gate_activations(critic)
        applied.append(GATED_ACTIVATIONS)
    generator, critic = generator.to(device), critic.to(device)
    trained = {}
    for role, module in (("generator", generator), ("critic", critic)):
        trained[role] = ModuleParameters(module)
        if enabled and optimizer in FLATTENED_OPTIMIZERS:
            try:
                trained[role] = FlatParameters(module)
            except ValueError as why:
                _log.info("%s trains per parameter, not flattened: %s", role, why)
    flat = [role for role, t in trained.items() if isinstance(t, FlatParameters)]
    if len(flat) == 2:
        applied.append(FLAT_PARAMETERS)
    elif flat:
        applied.append(f"{FLAT_PARAMETERS} ({flat[0]} only)")
    return Prepared(generator, critic, trained["generator"], trained["critic"], applied)
