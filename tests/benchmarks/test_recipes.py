"""The recipe suites: each loads, names its settings, and has a CPU-sized table that CI runs
(``make recipes-smoke``); the budgets their descriptions state are what the trainer will run."""

import re
from pathlib import Path

import pytest

import gans
from benchmarks.suites import BUILTIN_DIR, load_suite

RECIPES = sorted(p.stem for p in BUILTIN_DIR.glob("recipe-*.toml"))
MAKEFILE = Path(__file__).parents[2] / "Makefile"
OFFLINE = "mnist-5k"


def smoke_tables() -> dict[str, str]:
    """The Makefile's RECIPES: suite -> the dataset table CI runs."""
    text = MAKEFILE.read_text().replace("\\\n", " ")
    (line,) = re.findall(r"^RECIPES := (.*)$", text, flags=re.M)
    return dict(entry.split("=", 1) for entry in line.split())


def test_there_are_recipe_suites_and_ci_runs_each_of_them():
    assert len(RECIPES) == 6
    assert sorted(smoke_tables()) == RECIPES


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_suite_loads_and_its_ci_table_is_offline_and_described(name):
    suite = load_suite(name)
    table = smoke_tables()[name]
    assert table in suite.datasets
    assert table.split(":")[0] == OFFLINE  # runs without downloads
    assert any(d.split(":")[0] != OFFLINE for d in suite.datasets)  # and the recipe's own size
    description = " ".join(suite.description.split())
    assert description.startswith("Recipe:")
    assert "What this suite changes" in description or "The same networks" in description
    assert f"{table}: offline and CPU-sized (--datasets {table})" in description


def _gen_iters(name: str, dataset: str, train_rows: int) -> int:
    spec = next(s for s in load_suite(name).runs() if s.train.dataset == dataset)
    hparams = gans.make_strategy(spec.train.strategy, spec.train.hyperparameters).hparams
    batches = gans.batches_per_epoch(train_rows, spec.train.batch_size)
    return gans.epochs_to_gen_iters(spec.train.epochs, batches, hparams.critic_schedule)


@pytest.mark.parametrize(
    "name, dataset, train_rows, stated",
    [
        ("recipe-pytorch-wgan-gp", "mnist", 60_000, 50_700),
        ("recipe-pytorch-wgan-gp", "mnist-5k:n=1000", 1_000, 90),
        ("recipe-tf-wgan-clip", "mnist", 60_000, 11_256),
    ],
)
def test_the_budgets_a_description_states_are_the_trainers_conversion(
    name, dataset, train_rows, stated
):
    assert f"{stated:,}" in load_suite(name).description
    assert _gen_iters(name, dataset, train_rows) == stated


def test_the_pytorch_recipe_switches_to_one_critic_step_at_epoch_40():
    spec = load_suite("recipe-pytorch-wgan-gp").runs()[0]
    schedule = gans.make_strategy("wgan-gp", spec.train.hyperparameters).hparams.critic_schedule
    assert [schedule.steps_at(0, epoch) for epoch in (0, 39, 40, 200)] == [5, 5, 1, 1]
    assert spec.train.lr_decay and spec.train.latent_dim == 118 and spec.train.batch_size == 200
