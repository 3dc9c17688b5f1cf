"""RUN_FORMAT's policy: a change to the numbers a config produces comes with a new RUN_FORMAT.

The first curve values of two small configs are pinned here next to the RUN_FORMAT that produced
them. A change that moves them (a new random draw order, another algorithm, a new default) fails
this test: bump RUN_FORMAT in benchmarks/suites.py, so that old results get new run ids instead of
being taken for new ones, and pin the new values with it. The tolerance (1e-5 relative) absorbs
float rounding between CPUs and thread counts; a changed computation moves these values by far more.
"""

from __future__ import annotations

import dataclasses

import pytest

import gans
from benchmarks.suites import RUN_FORMAT
from gans import TrainConfig, Trainer

# (critic_loss, g_loss) per generator iteration, measured at RUN_FORMAT 3 to 5 (1 and 2 threads
# alike: 4 changed Adam's rounding, ~1e-9, below the tolerance at 3 iterations; 5 changed only
# runs whose losses explode).
PINNED = {
    "toy": (
        TrainConfig(
            strategy="wgan-gp",
            dataset="8gaussians",
            arch="mlp",
            width=16,
            batch_size=32,
            gen_iters=3,
            seed=0,
        ),
        [(-0.00408364, -0.10778516), (-0.00457069, -0.10782523), (-0.00496737, -0.1079568)],
    ),
    "image": (
        TrainConfig(
            strategy="gan",
            dataset="mnist-5k",
            arch="dcgan28",
            width=4,
            batch_size=8,
            gen_iters=3,
            seed=0,
        ),
        [(1.37803388, 0.68383533), (1.37234485, 0.68269098), (1.37058878, 0.68164724)],
    ),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_the_numbers_of_a_config_are_those_pinned_with_this_run_format(name):
    config, expected = PINNED[name]
    trainer = Trainer(config, progress=False)
    trainer.train()
    got = [(row["critic_loss"], row["g_loss"]) for row in trainer.curves]
    assert RUN_FORMAT == 5, "RUN_FORMAT changed: pin the values it produces here"
    assert got == [pytest.approx(pair, rel=1e-5, abs=1e-9) for pair in expected]


def test_the_run_id_changes_with_the_critic_norm_and_results_without_one_keep_theirs():
    from benchmarks.suites import EvalPlan, RunSpec

    config = PINNED["toy"][0]
    ids = {
        norm: RunSpec("s", dataclasses.replace(config, critic_norm=norm), EvalPlan(10, 10, 10))
        for norm in gans.CRITIC_NORMS
    }
    assert len({spec.run_id for spec in ids.values()}) == 3
    # The default leaves the hash, so the results of RUN_FORMAT 5 made before the field existed
    # are found again; the others record it.
    assert "critic_norm" not in ids["none"].resolved["train"]
    assert ids["batch"].resolved["train"]["critic_norm"] == "batch"


def test_epochs_and_critic_schedules_change_the_run_id_and_earlier_ids_stay():
    from benchmarks.suites import EvalPlan, RunSpec

    config = PINNED["toy"][0]

    def run_id(**changes) -> str:
        return RunSpec("s", dataclasses.replace(config, **changes), EvalPlan(10, 10, 10)).run_id

    # Computed before budgets in epochs and n_critic schedules existed (commit 0731575).
    assert run_id() == "da8c98d54cd8"
    assert run_id(hyperparameters={"n_critic": 2}) == "cfe72085e6ba"
    # Any schedule, or a budget in epochs, is another run.
    schedules = [
        {"unit": "epoch", "steps": [[0, 2], [4, 1]]},
        {"unit": "gen_iter", "steps": [[0, 2], [4, 1]]},
        {"base": 2, "burst": 10, "warmup": 1, "every": 2},
    ]
    ids = {run_id(hyperparameters={"n_critic": s}) for s in schedules}
    ids |= {run_id(gen_iters=None, epochs=1), run_id(gen_iters=None, epochs=2)}
    assert len(ids) == 5 and "da8c98d54cd8" not in ids
