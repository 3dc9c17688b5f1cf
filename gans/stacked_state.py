"""The parameters and optimizer states of stacked runs (``gans.stacking``): the members' own,
stacked along a leading member dimension, and each member's slice written back.

A member's optimizer state is kept per module parameter in the stack, whatever layout the member
trains with (one flat tensor with RMSprop's ``flat-parameters``, or one state per parameter), so
that a member's state after stacked training is exactly what it would hold had the same updates
been its own."""

from __future__ import annotations

import torch
from torch import nn

from gans.speedups import FlatParameters, TrainedParameters


def stacked_parameters(nets: list[nn.Module]) -> dict[str, torch.Tensor]:
    """Each parameter of ``nets`` stacked along a new first dimension, as a leaf to train."""
    names = [name for name, _ in nets[0].named_parameters()]
    own = [dict(net.named_parameters()) for net in nets]
    return {
        name: torch.stack([params[name].detach() for params in own]).requires_grad_(True)
        for name in names
    }


def _member_state(trained: TrainedParameters, optimizer: torch.optim.Optimizer) -> list[dict]:
    """A member's optimizer state per module parameter (a flat tensor's state split by the
    parameters' views of it); empty before the first step."""
    state = optimizer.state_dict()["state"]
    if isinstance(trained, FlatParameters):
        flat = state.get(0, {})
        split = {k: trained.per_parameter(v) for k, v in flat.items() if v.dim() > 0}
        count = len(trained.per_parameter(trained.parameter))
        return [
            {k: split[k][i] if k in split else v for k, v in flat.items()} for i in range(count)
        ]
    return [state.get(i, {}) for i in range(len(trained.optimized))]


def load_stacked_state(
    stacked: torch.optim.Optimizer,
    trained: list[TrainedParameters],
    optimizers: list[torch.optim.Optimizer],
) -> None:
    """Load into ``stacked`` (an optimizer of ``stacked_parameters``) the members' optimizer
    states, stacked, and the first member's settings (its learning rate, which a schedule
    changes)."""
    per_member = [_member_state(t, o) for t, o in zip(trained, optimizers)]
    state = {}
    for i, first in enumerate(per_member[0]):
        if first:  # the step count is shared: every member took the same steps
            state[i] = {
                k: v if v.dim() == 0 else torch.stack([m[i][k] for m in per_member])
                for k, v in first.items()
            }
    groups = stacked.state_dict()["param_groups"]
    for group, own in zip(groups, optimizers[0].state_dict()["param_groups"]):
        group.update({k: v for k, v in own.items() if k != "params"})
    stacked.load_state_dict({"state": state, "param_groups": groups})


def store_member_state(
    stacked: torch.optim.Optimizer, k: int, trained: TrainedParameters, optimizer
) -> None:
    """Member ``k``'s slice of the stacked optimizer's state, loaded into its own optimizer."""
    state = stacked.state_dict()
    per_param = [
        {name: v if v.dim() == 0 else v[k] for name, v in state["state"].get(i, {}).items()}
        for i in range(len(stacked.param_groups[0]["params"]))
    ]
    own = optimizer.state_dict()
    for group, new in zip(own["param_groups"], state["param_groups"]):
        group.update({key: v for key, v in new.items() if key != "params"})
    if not per_param[0]:
        own["state"] = {}
    elif isinstance(trained, FlatParameters):
        flat = {}
        for name, v in per_param[0].items():
            if v.dim() == 0:
                flat[name] = v.clone()
                continue
            flat[name] = torch.empty_like(trained.parameter)
            for view, source in zip(trained.per_parameter(flat[name]), per_param):
                view.copy_(source[name])
        own["state"] = {0: flat}
    else:
        own["state"] = {
            i: {
                name: v.clone() if v.dim() == 0 else torch.empty_like(p).copy_(v)
                for name, v in s.items()
            }
            for i, (s, p) in enumerate(zip(per_param, trained.optimized))
        }
    optimizer.load_state_dict(own)
