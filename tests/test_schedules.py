"""Critic-step schedules and budgets in epochs (gans.hyperparameters), by hand-counted steps."""

import pytest

import gans
from gans import ConfigError, TrainConfig, Trainer, critic_schedule, epochs_to_gen_iters
from gans.data import load_dataset

DIGITS = load_dataset("mnist-5k")  # 4,000 training digits
TOY = load_dataset("8gaussians")

PIECEWISE_EPOCHS = {"unit": "epoch", "steps": [[0, 5], [40, 1]]}
PIECEWISE_ITERS = {"unit": "gen_iter", "steps": [[0, 5], [100, 1]]}
WGAN_CODE = {"base": 5, "burst": 100, "warmup": 25, "every": 500}


def test_an_epoch_of_4000_images_at_batch_200_and_5_critic_steps_is_4_generator_iterations():
    assert gans.batches_per_epoch(4000, 200) == 20  # critic batches in one pass
    assert epochs_to_gen_iters(1, 20, critic_schedule(5)) == 4
    assert epochs_to_gen_iters(201, 20, critic_schedule(5)) == 804
    # The PyTorch recipe: 40 epochs of 4 iterations, then 161 of 20.
    assert epochs_to_gen_iters(201, 20, critic_schedule(PIECEWISE_EPOCHS)) == 40 * 4 + 161 * 20
    # A pass that does not divide into whole generator iterations ends inside one: 63 batches of
    # 64 on 4,000 rows, 5 per iteration: 12.6 iterations an epoch, 126 in ten.
    assert gans.batches_per_epoch(4000, 64) == 63
    assert epochs_to_gen_iters(10, 63, critic_schedule(5)) == 126


def test_the_trainer_converts_epochs_exactly_and_takes_the_passes_it_was_asked_for():
    config = TrainConfig(
        dataset="mnist-5k",
        arch="dcgan28",
        width=4,
        batch_size=200,
        gen_iters=None,
        epochs=2,
        hyperparameters={"n_critic": {"unit": "epoch", "steps": [[0, 5], [1, 1]]}},
        heldout_every=1000,
    )
    trainer = Trainer(config, data=DIGITS, progress=False)
    assert (trainer.batches_per_epoch, trainer.gen_iters) == (20, 4 + 20)
    assert trainer.train() == gans.DONE
    assert (trainer.gen_iter, trainer.critic_steps) == (24, 40)  # two passes of 20 batches
    steps = [row["critic_step"] for row in trainer.curves]
    assert steps[:5] == [5, 10, 15, 20, 21]  # 5 per iteration in epoch 0, 1 from epoch 1 on


@pytest.mark.parametrize(
    "n_critic, batches_per_epoch, expected",
    [
        (5, 1, 5 * 1000),
        (PIECEWISE_ITERS, 1, 100 * 5 + 900 * 1),
        # 20 batches an epoch: epochs 0-39 are 4 iterations of 5 steps (160 iterations), then 1
        (PIECEWISE_EPOCHS, 20, 160 * 5 + 840 * 1),
        # iterations 0-24 and 500 take 100 steps, the other 974 take 5
        (WGAN_CODE, 1, 26 * 100 + 974 * 5),
    ],
    ids=["constant", "piecewise-gen-iter", "piecewise-epoch", "wgan-warmup-periodic"],
)
def test_each_schedule_form_gives_the_hand_counted_critic_steps_of_1000_iterations(
    n_critic, batches_per_epoch, expected
):
    assert critic_schedule(n_critic).critic_steps(1000, batches_per_epoch) == expected


def test_the_trainer_takes_the_scheduled_critic_steps():
    schedule = {"base": 2, "burst": 7, "warmup": 3, "every": 10}
    config = TrainConfig(
        dataset="8gaussians",
        arch="mlp",
        width=16,
        batch_size=32,
        gen_iters=21,
        hyperparameters={"n_critic": schedule},
        log_every=5,
    )
    trainer = Trainer(config, data=TOY, progress=False)
    trainer.train()
    steps = [row["critic_step"] for row in trainer.curves]
    per_iteration = [b - a for a, b in zip([0] + steps, steps)]
    assert per_iteration == [7, 7, 7] + [2] * 7 + [7] + [2] * 9 + [7]  # iterations 10 and 20
    assert trainer.critic_steps == critic_schedule(schedule).critic_steps(21)


def test_a_schedule_is_part_of_the_hyperparameters_and_a_constant_one_is_its_number():
    hp = gans.make_strategy("wgan", {"n_critic": PIECEWISE_EPOCHS}).hparams
    assert hp.as_dict()["n_critic"] == PIECEWISE_EPOCHS
    assert critic_schedule(hp.as_dict()["n_critic"]) == hp.n_critic  # the recorded form reads back
    assert critic_schedule(WGAN_CODE).describe() == (
        "100 for the first 25 generator iterations and every 500th, else 5"
    )
    assert hp.n_critic.describe() == "5, then 1 from epoch 40"
    constant = gans.make_strategy("wgan", {"n_critic": {"unit": "epoch", "steps": [[0, 5]]}})
    assert constant.hparams.n_critic == 5  # the same setting as n_critic = 5


@pytest.mark.parametrize(
    "n_critic, message",
    [
        ({"unit": "epoch", "steps": [[0, -5]]}, "n_critic: steps must be [start, n_critic] pairs"),
        ({"unit": "epoch", "steps": [[0, 5], [-3, 1]]}, "starts integers >= 0"),
        ({"unit": "epoch", "steps": [[0, 5], [40, 1], [20, 2]]}, "got [0, 40, 20]"),
        ({"unit": "epoch", "steps": [[10, 5]]}, "must begin at 0 and increase, got [10]"),
        ({"unit": "hour", "steps": [[0, 5]]}, "unit must be one of epoch, gen_iter, got 'hour'"),
        ({"steps": [[0, 5]], "base": 5}, "n_critic: unknown or mixed key base, steps"),
        ({"base": 5, "burst": 100, "warmup": -1}, "warmup must be an integer >= 0, got -1"),
        (-1, "n_critic must be an integer >= 1, a piecewise"),
        (True, "got True"),
    ],
)
def test_a_malformed_schedule_is_one_clear_error(n_critic, message):
    with pytest.raises(ConfigError) as error:
        gans.make_strategy("wgan", {"n_critic": n_critic})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "budget, message",
    [
        ({"gen_iters": 10, "epochs": 2}, "give one budget: gen_iters or epochs"),
        ({"gen_iters": None}, "give one budget: gen_iters or epochs"),
        ({"gen_iters": None, "epochs": 0}, "epochs must be an integer from 1 to 1,000,000"),
    ],
)
def test_a_run_has_exactly_one_budget(budget, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(dataset="8gaussians", arch="mlp", **budget)
