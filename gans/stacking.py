"""Stacked runs: runs that differ only in their seed, trained together as one batched model.

Small networks leave a GPU idle between kernel launches and spend much of a CPU step outside the
arithmetic. ``StackedTrainer`` trains K such runs as one: each network's parameters get a leading
member dimension (``gans.stacked_state``), every operation runs once for all members
(``torch.func.vmap`` over ``functional_call``), and one optimizer steps the stacked parameters,
which is K independent optimizers because Adam, RMSprop and clipping work element by element.

Each member is an ordinary ``Trainer`` and keeps everything a separate run has: its random streams
(it draws exactly the batches, noise and penalty numbers its separate run would, from its own
generator, before the batched step), curves, status and checkpoint state. Between calls of
``train`` the members are plain trainers again (parameters and optimizer states written back), so
they are evaluated, sampled and checkpointed as separate runs are, and a stacked run resumes
separately or stacked alike. A member that diverges leaves the stack at the copy of the curves
where its separate run would stop; the others go on. Results equal separate runs' up to float
rounding (batched kernels add in another order).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from gans.stacked_state import load_stacked_state, stacked_parameters, store_member_state
from gans.trainer import (
    CRITIC_CURVES,
    DONE,
    RUNNING,
    Trainer,
    critic_objective,
    curve_row,
    full_precision,
)


class StackingError(ValueError):
    """Runs that cannot train stacked; the message says why in one line."""


def stacking_obstacle(trainer: Trainer) -> str | None:
    """Why ``trainer``'s run cannot train stacked (one line), or None when it can.

    A run stacks when its networks keep no buffers (batch norm's running statistics are updated in
    place, which ``vmap`` cannot batch), its penalty is written as ``draw`` and ``apply``
    (``gans.Penalty``), and its loss and penalty run under ``torch.func.vmap`` (tensor
    operations only, no Python branch on a tensor's value)."""
    for role, net in (("generator", trainer.generator), ("critic", trainer.critic)):
        kinds = sorted({type(m).__name__ for m in net.modules() if list(m.buffers(False))})
        if kinds:
            return f"the {role} keeps buffers ({', '.join(kinds)}), which vmap cannot update"
    penalty = trainer.strategy.penalty
    if penalty is not None and not penalty.stackable:
        return (
            f"its penalty {penalty.name!r} overrides __call__; written as draw and apply "
            "(gans.Penalty) it would stack"
        )
    try:
        _vmapped_check(trainer)
    except Exception as error:  # what vmap raises for a non-batchable operation varies
        first = (str(error).strip().splitlines() or [""])[0]
        return f"its loss or penalty cannot run under vmap ({type(error).__name__}: {first})"
    return None


def _vmapped_check(trainer: Trainer) -> None:
    """The strategy's loss and penalty once under vmap over two copies of the untrained critic,
    on a throwaway random stream (as ``Trainer.check_strategy``)."""
    rng = torch.Generator(trainer.device).manual_seed(trainer.config.seed)
    real = trainer.data.batch(4, rng).unsqueeze(0).expand(2, *[-1] * trainer.data.train.dim())
    with torch.no_grad():
        fake = full_precision(trainer.generator(trainer._noise(4, rng)))
        fake = fake.unsqueeze(0).expand_as(real)
    params = {k: torch.stack([p.detach()] * 2) for k, p in trainer.critic.named_parameters()}
    draws = _stack([_draws(trainer, real[0], fake[0], rng)] * 2)
    objective = _CriticObjective(trainer, copy.deepcopy(trainer.critic).to("meta"))
    vmap(objective)(params, real, fake, draws)


def _draws(trainer: Trainer, real, fake, rng) -> tuple[torch.Tensor, ...]:
    penalty = trainer.strategy.penalty
    return () if penalty is None else tuple(penalty.draw(real, fake, rng))


def _stack(per_member: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.stack(column) for column in zip(*per_member))


def _call(template: nn.Module, params: dict[str, torch.Tensor]) -> Callable:
    """The network ``template`` with ``params`` (one member's, inside vmap) as a function."""
    return lambda x: functional_call(template, params, (x,))


class _CriticObjective:
    """One member's ``critic_objective``, with the critic given as parameters (to vmap)."""

    def __init__(self, trainer: Trainer, template: nn.Module):
        self.loss, self.penalty = trainer.strategy.loss, trainer.strategy.penalty
        self.precision, self.template = trainer._mixed_precision, template

    def __call__(self, params, real, fake, draws):
        critic = _call(self.template, params)
        penalty = self.penalty
        with self.precision():
            # One call on real and fake: no stacked critic has batch norm, so it equals two.
            return critic_objective(
                self.loss,
                critic,
                real,
                fake,
                joint=True,
                penalize=None
                if penalty is None
                else lambda: penalty.apply(critic, real, fake, draws),
            )


class StackedTrainer:
    """Trains ``members``, trainers whose configurations differ only in their seed, as one
    batched model (see the module docstring).

    Args:
        members: the runs' trainers, each at the same generator iteration, built on one device
            with the same speedups setting; they may be fresh or restored from checkpoints.
        progress: show one tqdm bar for the group; ``progress_position`` places it.
        compile: run the batched critic and generator objectives through ``torch.compile``
            (for GPUs, as ``Trainer``'s option).

    Raises:
        StackingError: configurations that differ in more than the seed, members at different
            iterations, or a run that cannot stack (``stacking_obstacle``).
    """

    def __init__(
        self,
        members: list[Trainer],
        progress: bool = True,
        progress_position: int = 0,
        compile: bool = False,
    ):
        if not members:
            raise StackingError("a stack needs at least one member")
        first = members[0]
        for member in members[1:]:
            if dataclasses.replace(member.config, seed=first.config.seed) != first.config:
                raise StackingError("stacked runs must have the same configuration but the seed")
            if (member.device, member.speedups) != (first.device, first.speedups):
                raise StackingError("stacked runs must share the device and the speedups setting")
            if (member.gen_iter, member.critic_steps) != (first.gen_iter, first.critic_steps):
                raise StackingError("stacked runs must be at the same generator iteration")
        # The members differ only in seed, so what stops one from stacking stops them all.
        if (why := stacking_obstacle(first)) is not None:
            raise StackingError(f"{first.config.strategy} cannot train stacked: {why}")
        self.members = list(members)
        self.config, self.device = first.config, first.device
        self._generator = copy.deepcopy(first.generator).to("meta")
        self._critic = copy.deepcopy(first.critic).to("meta")
        self._critic_objective = vmap(_CriticObjective(first, self._critic))
        self._generate = vmap(lambda params, noise: _call(self._generator, params)(noise))
        self._generator_objective = vmap(self._generator_loss)
        self._heldout = vmap(self._heldout_loss)
        if compile:
            self._critic_objective = torch.compile(self._critic_objective)
            self._generator_objective = torch.compile(self._generator_objective)
        # Each layer's weight (two or more dimensions per member), as Trainer._layer_weights.
        self._layer_names = [
            name
            for name, p in first.critic.named_parameters()
            if name.endswith("weight") and p.dim() > 1
        ]
        self._progress, self._progress_position = progress, progress_position
        self.active: list[Trainer] = []

    # The stack: members' parameters and optimizer states with a leading member dimension.

    def _stack(self, members: list[Trainer]) -> None:
        self.active = members
        first = members[0]
        self.g_params = stacked_parameters([m.generator for m in members])
        self.c_params = stacked_parameters([m.critic for m in members])
        self.opt_g = first.hparams.make_optimizer(list(self.g_params.values()))
        self.opt_c = first.hparams.make_optimizer(list(self.c_params.values()))
        self.schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, first._lr_factor)
            for opt in (self.opt_g, self.opt_c)
            if first.schedulers
        ]
        for stacked, trained, optimizer in (
            (self.opt_g, [m.generator_params for m in members], [m.opt_g for m in members]),
            (self.opt_c, [m.critic_params for m in members], [m.opt_c for m in members]),
        ):
            load_stacked_state(stacked, trained, optimizer)
        for scheduler, own in zip(self.schedulers, first.schedulers):
            scheduler.load_state_dict(own.state_dict())

    @torch.no_grad()
    def _unstack(self) -> None:
        """Write the stack back into its members: parameters, optimizer states, schedulers."""
        for k, member in enumerate(self.active):
            for params, net in ((self.g_params, member.generator), (self.c_params, member.critic)):
                for name, p in net.named_parameters():
                    p.copy_(params[name][k])
            for stacked, trained, optimizer in (
                (self.opt_g, member.generator_params, member.opt_g),
                (self.opt_c, member.critic_params, member.opt_c),
            ):
                store_member_state(stacked, k, trained, optimizer)
            for scheduler, own in zip(self.schedulers, member.schedulers):
                own.load_state_dict(scheduler.state_dict())
        self.active = []

    # One generator iteration of every active member.

    def _noise(self, n: int) -> torch.Tensor:
        return torch.stack([m._noise(n, m.rng) for m in self.active])

    def _real(self, split: str = "train", rngs=None) -> torch.Tensor:
        """One batch per member, drawn from each member's stream (``rngs``: which stream)."""
        rngs = rngs or [m.rng for m in self.active]
        data, batch = self.active[0].data, self.config.batch_size
        idx = torch.stack([data.batch_indices(batch, rng, split) for rng in rngs])
        return getattr(data, split)[idx]

    def _generated(self, n: int) -> torch.Tensor:
        with torch.no_grad(), self.active[0]._mixed_precision():
            return full_precision(self._generate(self.g_params, self._noise(n)))

    def _critic_steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``Trainer._critic_steps``, for every member: (steps, members, CRITIC_CURVES) and
        (members, layers) per-layer gradient norms (NaN unless this iteration records them)."""
        first = self.active[0]
        n = first.critic_schedule.steps_at(
            first.gen_iter, first.critic_steps // first.batches_per_epoch
        )
        batch = self.config.batch_size
        # The separate run's draws, in its order: with one step, the real batch comes before the
        # noise; with several, the noise for all of them first (Trainer._critic_steps).
        fakes = [None] * n if n == 1 else self._generated(n * batch).split(batch, dim=1)
        record = (first.gen_iter + 1) % self.config.layer_grads_every == 0
        rows, layer_norms = [], None
        for i, fake in enumerate(fakes):
            real = self._real()
            if fake is None:
                fake = self._generated(batch)
            draws = _stack([_draws(m, real[k], fake[k], m.rng) for k, m in enumerate(self.active)])
            loss, total, penalty, grad_norm = self._critic_objective(
                self.c_params, real, fake, draws
            )
            if record and i == n - 1:
                weights = [self.c_params[name] for name in self._layer_names]
                grads = torch.autograd.grad(loss.sum(), weights, retain_graph=True)
                layer_norms = torch.stack(
                    [full_precision(g).flatten(1).norm(dim=1) for g in grads], 1
                )
            for p in self.c_params.values():
                p.grad = None
            total.sum().backward()
            self.opt_c.step()
            values = self._critic_values(loss.detach())
            values.update(penalty=penalty, grad_norm=grad_norm)
            rows.append(curve_row(values, CRITIC_CURVES).T)
        if layer_norms is None:
            layer_norms = torch.full(
                (len(self.active), len(self._layer_names)), float("nan"), device=self.device
            )
        return torch.stack(rows), layer_norms

    def _critic_values(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """critic_loss, w_estimate and constraint_active per member, after the constraint."""
        strategy, nan = self.active[0].strategy, torch.full_like(loss, float("nan"))
        active = nan
        if (constraint := strategy.constraint) is not None:
            with torch.no_grad():
                # Each member's own parameters (views of the stack, changed in place), so that
                # the share at the boundary is the member's.
                params = list(self.c_params.values())
                active = torch.stack([constraint([p[k] for p in params]) for k in range(len(loss))])
        w_estimate = -loss if strategy.loss.estimates_wasserstein else nan
        active = active.to(loss.dtype)
        return {"critic_loss": loss, "w_estimate": w_estimate, "constraint_active": active}

    def _generator_loss(self, g_params, c_params, noise):
        first = self.active[0]
        with first._mixed_precision():
            fake = _call(self._generator, g_params)(noise)
            scores = full_precision(_call(self._critic, c_params)(fake)).view(-1)
            return first.strategy.loss.generator_loss(scores)

    def _generator_step(self) -> torch.Tensor:
        noise = self._noise(self.config.batch_size)
        # The critic's parameters are constants here (Trainer.generator_step freezes them).
        c_params = {name: p.detach() for name, p in self.c_params.items()}
        if self.config.freeze_generator:
            with torch.no_grad():
                return self._generator_objective(self.g_params, c_params, noise)
        loss = self._generator_objective(self.g_params, c_params, noise)
        for p in self.g_params.values():
            p.grad = None
        loss.sum().backward()
        self.opt_g.step()
        return loss.detach()

    def _heldout_loss(self, g_params, c_params, real, noise):
        first = self.active[0]
        with first._mixed_precision():
            fake = _call(self._generator, g_params)(noise)
            critic = _call(self._critic, c_params)
            real_scores = full_precision(critic(real)).view(-1)
            fake_scores = full_precision(critic(fake)).view(-1)
        return first.strategy.loss.critic_loss(real_scores, fake_scores)

    @torch.no_grad()
    def _heldout_critic_loss(self) -> torch.Tensor:
        """``Trainer.heldout_critic_loss`` of every member, from each one's evaluation stream.
        (No stacked network has batch norm, so evaluation mode changes nothing.)"""
        rngs = [m.eval_rng for m in self.active]
        real = self._real("test", rngs)
        noise = torch.stack([m._noise(self.config.batch_size, m.eval_rng) for m in self.active])
        return self._heldout(self.g_params, self.c_params, real, noise)

    # Training.

    def train(self, until: int | None = None, max_seconds: float | None = None) -> list[str]:
        """``Trainer.train`` for every member still running: up to generator iteration ``until``
        (default: the budget), or ``max_seconds`` of training time. A member's ``elapsed_s`` is
        its share of the group's time (the group's time over the members trained together).

        Returns: each member's status, in the order of ``members``."""
        running = [m for m in self.members if m.status == RUNNING]
        if not running:
            return [m.status for m in self.members]
        first = running[0]
        until = first.gen_iters if until is None else min(until, first.gen_iters)

        def out_of_time() -> bool:
            return max_seconds is not None and self.active[0].elapsed_s >= max_seconds

        if first.gen_iter == 0:
            for member in running:
                member.check_strategy()
        bar = tqdm(
            total=first.gen_iters,
            initial=first.gen_iter,
            disable=not self._progress,
            desc=f"{self.config.strategy} {self.config.dataset} "
            f"s{','.join(str(m.config.seed) for m in running)}",
            position=self._progress_position,
            leave=self._progress_position == 0,
            dynamic_ncols=True,
        )
        self._stack(running)
        pending: list[tuple[int, int, float, torch.Tensor]] = []
        try:
            while self.active and self.active[0].gen_iter < until and not out_of_time():
                start = time.perf_counter()
                critic_rows, layer_norms = self._critic_steps()
                g_loss = self._generator_step()
                for scheduler in self.schedulers:
                    scheduler.step()
                share = (time.perf_counter() - start) / len(self.active)
                for member in self.active:
                    member.gen_iter += 1
                    member.critic_steps += len(critic_rows)
                    member.elapsed_s += share
                leader = self.active[0]
                heldout = torch.full_like(g_loss, float("nan"))
                if leader.gen_iter % self.config.heldout_every == 0:
                    heldout = self._heldout_critic_loss()
                row = torch.cat(
                    [critic_rows.mean(0), torch.stack([g_loss, heldout], 1), layer_norms], 1
                )
                pending.append((leader.gen_iter, leader.critic_steps, leader.elapsed_s, row))
                if leader.gen_iter % self.config.log_every == 0 or leader.gen_iter == until:
                    self._flush(pending)
                    bar.update(leader.gen_iter - bar.n)
            self._flush(pending)
        finally:
            stacked = self.active
            if stacked:
                self._flush(pending)
                self._unstack()
            bar.close()
        for member in stacked:
            if member.status == RUNNING and (
                member.gen_iter >= member.gen_iters
                or (max_seconds is not None and member.elapsed_s >= max_seconds)
            ):
                member.status = DONE
        return [m.status for m in self.members]

    def _flush(self, pending: list) -> None:
        """Hand the pending rows to each member's own copy to the host (``Trainer._flush``, one
        device sync for all); a member that diverged leaves the stack there."""
        if not pending:
            return
        rows = torch.stack([row for *_, row in pending]).cpu()
        for k, member in enumerate(self.active):
            member._pending = [(*head, rows[t, k]) for t, (*head, _) in enumerate(pending)]
            member._flush()
        pending.clear()
        if any(m.status != RUNNING for m in self.active):
            survivors = [m for m in self.active if m.status == RUNNING]
            self._unstack()
            if survivors:
                self._stack(survivors)
