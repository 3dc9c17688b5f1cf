"""pytest-benchmark timings of the hot paths: `tox -e bench` (or `pytest -m bench`), not part of
the default run. Compare two commits with `pytest-benchmark compare`."""

import pytest
import torch

import gans
from gans.metrics_image import evaluate_images

pytestmark = pytest.mark.bench

DIGITS = gans.load_dataset("mnist-5k")


def trainer(strategy, width, batch=64):
    config = gans.TrainConfig(
        strategy=strategy, dataset="mnist-5k", width=width, batch_size=batch, gen_iters=10_000
    )
    t = gans.Trainer(config, data=DIGITS, progress=False)
    for _ in range(2):  # warm-up: allocator, thread pools, optimizer state
        t.critic_step()
        t.generator_step()
    return t


@pytest.mark.parametrize("step", ["critic_step", "generator_step"])
@pytest.mark.parametrize("width", [16, 64])
@pytest.mark.parametrize("strategy", ["gan", "wgan", "wgan-gp"])
def test_step(benchmark, strategy, width, step):
    benchmark.group = f"{strategy} {step.replace('_', ' ')}"
    benchmark(getattr(trainer(strategy, width), step))


def test_evaluation_of_1000_images(benchmark, tmp_path_factory):
    benchmark.group = "evaluation"
    cache = tmp_path_factory.mktemp("cache")
    fakes = torch.rand(1000, 1, 28, 28) * 2 - 1
    evaluate_images(fakes, DIGITS, n_fake=1000, cache_dir=cache)  # classifier and real stats
    benchmark(evaluate_images, fakes, DIGITS, n_fake=1000, metrics=("fid",), cache_dir=cache)
