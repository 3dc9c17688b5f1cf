"""The real-data floor: real train rows scored as a generator's samples would be, and its cache."""

from __future__ import annotations

import json
import math

import pytest

import gans
from gans.evaluation import REFERENCES_DIR
from gans.feature_extractor_classifier import classifier_extractor
from gans.metrics import FID, HIGH_QUALITY, IS, KID, MODES_COVERED, PRECISION, RECALL, W1
from gans.metrics_image import INCEPTION


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One classifier for the module's image tests (training it is their main cost)."""
    return tmp_path_factory.mktemp("gans-cache")


@pytest.fixture(scope="module")
def mnist():
    return gans.load_dataset("mnist-5k")


def values(rows):
    return {row.metric: row.value for row in rows}


def cached_files(cache_dir):
    return sorted((cache_dir / REFERENCES_DIR).glob("*.json"))


# W1 of 500 train against 500 test points, measured over eval seeds 0-2: sampling noise alone.
TOY_FLOORS = {
    "8gaussians": (0.079, 0.087),
    "25gaussians": (0.115, 0.149),
    "swissroll": (0.118, 0.130),
}


@pytest.mark.parametrize("name", TOY_FLOORS)
def test_the_toy_floor_is_the_sampling_noise_of_w1(name, tmp_path):
    data = gans.load_dataset(name)
    found = values(gans.evaluate_real(data, 500, eval_seed=0, cache_dir=tmp_path))
    low, high = TOY_FLOORS[name]
    # Independent draws of one distribution: above 0, and well below an untrained generator's
    # 1.4 (tests/benchmarks/test_run.py); the band is the measured spread with a 30% margin.
    assert 0.7 * low <= found[W1] <= 1.3 * high
    if name != "swissroll":  # the mixtures: every mode is covered by real points
        assert found[MODES_COVERED] == len(gans.data.mixture_modes(name)[0])
        # 1 - exp(-4.5) = 0.989 of a 2-D Gaussian lies within 3 standard deviations.
        assert 0.97 <= found[HIGH_QUALITY] <= 1.0


def test_the_toy_floor_rows_say_what_was_compared(tmp_path):
    rows = gans.evaluate_real(
        gans.load_dataset("25gaussians"), 200, eval_seed=3, cache_dir=tmp_path
    )
    (w1,) = [row for row in rows if row.metric == W1]
    assert (w1.n_fake, w1.n_real, w1.real_split, w1.eval_seed) == (200, 200, "test", 3)
    assert w1.feature_extractor == "points" and w1.unavailable is None


def test_the_floor_is_cached_and_read_back(tmp_path):
    data = gans.load_dataset("25gaussians")
    first = gans.evaluate_real(data, 300, eval_seed=0, cache_dir=tmp_path)
    (path,) = cached_files(tmp_path)
    assert gans.evaluate_real(data, 300, eval_seed=0, cache_dir=tmp_path) == first
    # The second call read the file: an edited value comes back.
    saved = json.loads(path.read_text())
    saved["rows"][0]["value"] = 123.0
    path.write_text(json.dumps(saved))
    again = gans.evaluate_real(data, 300, eval_seed=0, cache_dir=tmp_path)
    assert again[0].value == 123.0 and again[1:] == first[1:]
    # Another seed or count is another floor, cached beside it.
    other_seed = gans.evaluate_real(data, 300, eval_seed=1, cache_dir=tmp_path)
    gans.evaluate_real(data, 200, eval_seed=0, cache_dir=tmp_path)
    assert len(cached_files(tmp_path)) == 3
    assert values(other_seed)[W1] != pytest.approx(values(first)[W1], rel=1e-3)


def test_the_image_floor_of_mnist_5k_with_the_classifier(mnist, cache_dir):
    rows = gans.evaluate_real(mnist, 500, eval_seed=0, cache_dir=cache_dir)
    found = values(rows)
    # Measured at 500 train digits against the 1000 test digits: FID 17.1 (seed 0) and 17.2
    # (seed 1), 10.1-13.4 at 1000; a generator's FID is read against this, not against 0. The
    # train split is sorted by class: a prefix instead of a random subset would be far above.
    assert 8.0 <= found[FID] <= 35.0
    assert 0.0 <= found[KID] <= 8.0
    assert 0.8 <= found[PRECISION] <= 0.95 and 0.8 <= found[RECALL] <= 0.97
    assert 7.5 <= found[IS] <= 9.8  # 10 balanced classes at most
    name = classifier_extractor(mnist, cache_dir).name
    assert {(r.feature_extractor, r.n_fake, r.n_real, r.real_split) for r in rows} == {
        (name, 500, 1000, "test")
    }
    files = cached_files(cache_dir)
    assert gans.evaluate_real(mnist, 500, eval_seed=0, cache_dir=cache_dir) == rows
    assert cached_files(cache_dir) == files


def test_a_class_subset_floor_uses_the_classifier_it_is_given(mnist, cache_dir):
    sevens = gans.load_dataset("mnist-5k:7")
    rows = gans.evaluate_real(
        sevens, 200, eval_seed=0, cache_dir=cache_dir, metrics=("fid",), classifier_data=mnist
    )
    (fid,) = [row for row in rows if row.metric == FID]
    assert fid.feature_extractor == classifier_extractor(mnist, cache_dir).name
    assert (fid.n_fake, fid.n_real) == (200, 100)  # all 100 held-out sevens
    # One class against itself, few samples: measured 44.3 (seed 0) and 35.4 (seed 1).
    assert 15.0 <= fid.value <= 70.0


def test_an_inception_floor_without_weights_is_nan_with_the_reason_and_not_cached(mnist, tmp_path):
    missing = tmp_path / "missing.pt"
    rows = gans.evaluate_real(
        mnist, 200, cache_dir=tmp_path, extractor=INCEPTION, inception_weights=missing
    )
    assert {row.metric for row in rows} >= {FID, IS, KID, PRECISION, RECALL}
    assert all(math.isnan(row.value) for row in rows)
    assert {row.unavailable for row in rows} == {f"Inception weights not found at {missing}"}
    assert cached_files(tmp_path) == []  # a later call with the weights computes them


def test_a_floor_larger_than_the_train_split_is_an_error(tmp_path):
    sevens = gans.load_dataset("mnist-5k:7")
    with pytest.raises(ValueError, match=r"n_fake=401 needs as many train rows; .* has 400$"):
        gans.evaluate_real(sevens, 401, cache_dir=tmp_path)
    assert not (tmp_path / REFERENCES_DIR).exists()
