"""Tolerances between two computations of the same run that round differently (stacked and
separate, interrupted and not), derived from bounds that hold on every CPU kind.

Such runs are compared in float64 (precision "fp64": the same runs, draws and initial weights,
computed in float64), not float32: a gradient that is exactly zero (the two halves of a
Wasserstein loss cancelling) comes out of float32 as a leftover of ~1e-8, which Adam and RMSprop
(eps 1e-8) turn into a step of the full learning rate in a random direction, so two float32
computations of a run can differ by ~1e-4 in a weight, as much as stacking with another member's
noise does (measured). Float64's leftovers (~1e-17) stay far below eps.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

import gans
from benchmarks.suites import load_suite

EPS64, EPS32 = torch.finfo(torch.float64).eps, torch.finfo(torch.float32).eps
# Metrics are computed from samples cast to float32 (gans.evaluate): one rounding per sample,
# which moves a metric by up to float32's eps of its magnitude.
EVALUATION_RTOL = EPS32
# The share of critic weights held at the clipping boundary counts weights, and some are ties: a
# weight clamped to c whose gradient is exactly zero stays at c in exact arithmetic, so rounding
# decides whether it counts. Exact arithmetic, not the machine, decides how many such weights
# there are; in float64 up to 2 of 609 (0.3%) differed over 9 seeds. 1% allows three times that.
SHARE_TOLERANCE = 0.01


def rounding_bound(longest_sum: int, steps: int, eps: float) -> float:
    """How far two computations of ``steps`` steps that sum in other orders may drift apart,
    relative to the largest magnitude of a compared quantity: a sum of n terms is off by at most
    n * eps of its terms' magnitudes (Higham's bound), and the steps' errors add. An envelope, not
    a proof: training can amplify a difference, which the margin measured against it covers."""
    return steps * longest_sum * eps


def longest_sum(trainer: gans.Trainer) -> int:
    """An upper bound on the terms of any sum in one of ``trainer``'s steps: a layer's forward
    sum has at most a weight tensor's elements, and a weight gradient sums over the batch and the
    positions of a feature map, which in these networks is no larger than a sample."""
    weights = [*trainer.generator.parameters(), *trainer.critic.parameters()]
    largest = max(max(p.numel() for p in weights), math.prod(trainer.data.sample_shape))
    return trainer.config.batch_size * largest


def fp64_tolerance(trainer: gans.Trainer, steps: int | None = None) -> float:
    """``rounding_bound`` of an fp64 run over its ``steps`` (default: the critic and generator
    steps it took). Measured: stacked and separate runs at most 5e-13 apart where this gives 1e-9
    to 1e-8; a member trained on another member's noise differs by 1e-4 or more."""
    steps = trainer.critic_steps + trainer.gen_iter if steps is None else steps
    return rounding_bound(longest_sum(trainer), steps, EPS64)


def one_step_tolerance(trainer: gans.Trainer) -> float:
    """``rounding_bound`` of one float32 step from a given state: no optimizer step has yet
    turned a leftover into a full step (the module docstring), so float32 is compared directly."""
    return rounding_bound(longest_sum(trainer), 1, EPS32)


def bf16_tolerance(fp32: gans.Trainer) -> tuple[float, float]:
    """How far a bfloat16-autocast value may be from its float32 value: every layer of the
    generator and critic rounds its input to bfloat16 (8-bit mantissa, eps 2**-7) and the errors
    along the path add, so the relative bound is the layer count times eps (0.0625 for dcgan28).
    Returns: that relative bound, and an absolute one for the critic loss, a difference of two
    means of scores that may cancel: the bound times the mean magnitude of the scores."""
    nets = (fp32.generator, fp32.critic)
    layers = sum(p.dim() > 1 for net in nets for p in net.parameters())
    rtol = layers * torch.finfo(torch.bfloat16).eps
    with torch.no_grad():
        samples = torch.cat([fp32.data.test[:64], fp32.generate(64)])
        scale = fp32.critic(samples).abs().mean().item()
    return rtol, rtol * scale


def assert_close_columns(a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> None:
    """Every column of ``a`` within ``rtol`` times ``b``'s largest magnitude in that column (the
    clipped share within SHARE_TOLERANCE), NaN where ``b`` has NaN."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        mine, theirs = (torch.tensor(f[column].to_numpy(float)) for f in (a, b))
        scale = theirs.nan_to_num(0.0).abs().max().item()
        atol = SHARE_TOLERANCE if column == "constraint_active" else rtol * scale
        torch.testing.assert_close(
            mine, theirs, rtol=0.0, atol=atol, equal_nan=True, msg=lambda m, c=column: f"{c}: {m}"
        )


def suite_tolerance(suite: Path, suite_dir: Path) -> float:
    """For the tables of a suite of fp64 runs (``suite``: its file; ``suite_dir``: its results):
    ``fp64_tolerance`` of its longest run, plus ``EVALUATION_RTOL`` for its metrics."""
    curves = pd.read_parquet(suite_dir / "curves.parquet")
    steps = int((curves["critic_step"] + curves["gen_iter"]).max())
    specs = load_suite(str(suite)).runs()
    assert {spec.train.precision for spec in specs} == {"fp64"}, "compare fp64 runs"
    trainers = [gans.Trainer(spec.train, progress=False) for spec in specs]
    return max(fp64_tolerance(trainer, steps) for trainer in trainers) + EVALUATION_RTOL
