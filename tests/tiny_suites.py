"""Tiny suite files and the runner called on them, for the tests of tests/benchmarks and
tests/faults (tests/ is on sys.path: pytest puts the directory of its conftest.py there)."""

import textwrap
from pathlib import Path

import pandas as pd

from benchmarks.run import main


def tiny_suite(
    directory: Path, *, width=8, strategies=("gan", "wgan-gp"), seeds=(0, 1), extra="", budget=""
):
    """A suite file named tiny.toml (so its results go to <out>/tiny) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiny.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            seeds = {list(seeds)}
            strategies = {list(strategies)!r}

            [eval]
            intermediate_samples = 100
            final_samples = 200

            [datasets.25gaussians]
            arch = "mlp"
            width = {width}
            batch_size = 32
            {budget or "gen_iters = 20"}
            eval_every = 10
            """
        ).replace("'", '"')
        + textwrap.dedent(extra)
    )
    return path


# Columns that differ between two invocations that compute the same numbers: wall-clock, the
# torch threads a run trained with (2 in a test's process, 1 in a worker or a runner started by
# a test: the numbers of these tiny networks do not depend on it), and the hash of uncommitted
# changes, which a developer's edits during a test change (test_provenance.py tests it).
VARIES_BY_INVOCATION = ("elapsed_s", "train_s", "eval_s", "threads", "code_diff")


def run(*args) -> int:
    # In process unless a test asks otherwise: worker processes would spend seconds importing torch.
    workers = [] if "--workers" in args else ["--workers", "1"]
    # Each run alone unless a test asks otherwise, so that runs compare bit for bit with a
    # Trainer's (stacked runs equal them up to float rounding: test_stacked_runs.py).
    stack = [] if "--stack" in args else ["--stack", "1"]
    return main([str(a) for a in args] + workers + stack + ["--no-report"])


def table(suite_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(suite_dir / f"{name}.parquet")


BOOM_PLUGIN = """
import gans


class BoomLoss(gans.JSLoss):
    name = "boom"

    def generator_loss(self, fake_scores):
        raise RuntimeError("boom")


class Boom(gans.Strategy):
    defaults = gans.Hyperparameters(optimizer="adam", lr=2e-4, betas=(0.5, 0.999))

    def make_loss(self):
        return BoomLoss()


gans.register_strategy("boom-loss", Boom, provider=__file__)
"""

# A strategy whose penalty overrides __call__ (drawing inside): it trains, but never stacked.
CALL_ONLY_PLUGIN = """
import gans
from gans.penalties import input_gradient_norms, interpolate


class CallOnlyPenalty(gans.Penalty):
    name = "call-only"

    def __call__(self, critic, real, fake, rng):
        norms = input_gradient_norms(critic, interpolate(real, fake, rng))
        return gans.PenaltyOutput((norms - 1).square().mean(), norms.detach().mean())


class CallOnly(gans.Strategy):
    defaults = gans.Hyperparameters(optimizer="adam", lr=1e-4, betas=(0.5, 0.9), n_critic=1)

    def make_loss(self):
        return gans.WassersteinLoss()

    def make_penalty(self):
        return CallOnlyPenalty()


gans.register_strategy("call-only", CallOnly, provider=__file__)
"""
