"""RUN_FORMAT's policy: a change to the numbers a config produces comes with a new RUN_FORMAT.

The first curve values of two small configs are pinned here next to the RUN_FORMAT that produced
them. A change that moves them (a new random draw order, another algorithm, a new default) fails
this test: bump RUN_FORMAT in benchmarks/suites.py, so that old results get new run ids instead of
being taken for new ones, and pin the new values with it.

The configs run at precision "fp64", the same runs computed in float64: their values depend on
the CPU kind only through float64's rounding, within the bound of tests/tolerances.py, whereas
float32 runs of these configs differ by up to 1e-4 relative between computations that round
differently (the fp32 toy run's first g_loss is 8e-5 from the fp64 run's).
"""

from __future__ import annotations

import dataclasses

import pytest
from tolerances import fp64_tolerance

import gans
from benchmarks.suites import RUN_FORMAT
from gans import TrainConfig, Trainer

# (critic_loss, g_loss) per generator iteration, measured at RUN_FORMAT 5 in float64 (their fp32
# runs were pinned at RUN_FORMAT 3 to 5 to 1e-5).
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
            precision="fp64",
        ),
        [
            (-0.0040836418313217855, -0.10777612323077243),
            (-0.004570686773727245, -0.10782899901557161),
            (-0.004967367659877639, -0.10795984175366986),
        ],
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
            precision="fp64",
        ),
        [
            (1.378033852603625, 0.6838352652049775),
            (1.3723448799275697, 0.6826909179254783),
            (1.370588720110951, 0.6816472407934685),
        ],
    ),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_the_numbers_of_a_config_are_those_pinned_with_this_run_format(name):
    config, expected = PINNED[name]
    trainer = Trainer(config, progress=False)
    trainer.train()
    got = [(row["critic_loss"], row["g_loss"]) for row in trainer.curves]
    assert RUN_FORMAT == 5, "RUN_FORMAT changed: pin the values it produces here"
    # 3e-11 and 3e-10 of the largest pinned magnitude
    atol = fp64_tolerance(trainer) * max(abs(value) for pair in expected for value in pair)
    assert got == [pytest.approx(pair, rel=0, abs=atol) for pair in expected]


def test_the_run_id_changes_with_the_critic_norm_and_results_without_one_keep_theirs():
    from benchmarks.suites import EvalPlan, RunSpec

    config = dataclasses.replace(PINNED["toy"][0], precision="fp32")
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

    config = dataclasses.replace(PINNED["toy"][0], precision="fp32")

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
