"""A small classifier trained on the dataset itself, used as torch-fidelity's feature extractor.

Inception features are a poor fit for 28 x 28 grayscale digits (and its weights are not available
offline), so MNIST-like metrics use a CNN trained on the train split. It offers three feature
layers: the 128-d penultimate ReLU activations stand in for Inception's pool features in FID and
KID; the same activations scaled to unit length are the space of the k-nearest-neighbour metrics
(precision/recall, density/coverage); the logits stand in for Inception's logits in IS.

Why unit length for the neighbour metrics: images unlike any digit (noise, scattered dots) excite
the penultimate units weakly and land near the origin, beside the few ambiguous real digits whose
activations are weak too. Those digits are outliers with the widest k-NN radii, so their balls
swallow such images: on raw activations, 1,000 images of random white dots (10% of the pixels)
had precision 0.99 against the test digits, as high as real train digits (0.88), at k = 1, 3
and 5 alike; the pre-ReLU activations (0.82), the logits (0.95) and the flattened convolution
maps (dots or black images at 1.0) did no better. Which units fire, not how strongly, tells a
stroke from a dot: on unit vectors the dots score 0.03 and real digits 0.89, and FID, which
stays on the raw activations, keeps its scale.

Where the weights come from. The registered name, ``classifier-<dataset>-<12 hex>``, carries a
hash of the weights themselves (and of the code version, which also says how features are read
from them), so two rows that name the same extractor were computed by the same network; a
classifier FID compares only with rows that name the same classifier.

- mnist-5k's classifier ships with the package (``SHIPPED``, files in ``classifier_weights/``):
  every machine registers the same name and trains nothing. Training is deterministic on one
  CPU kind and torch version only (Intel and AMD kernels round differently): trained on each
  machine, mnist-5k would be measured by different networks under different names.
- Other datasets (mnist, fashion-mnist, cifar10, subsets, or mnist-5k data that differ from those
  the shipped weights were trained on) train on the machine, deterministically as far as torch
  allows, and are cached under a hash of the training data and this code's version.
- A classifier retrained on purpose: ``python -m gans.train_classifier DATASET --out FILE``
  writes a weights file that evaluations use through their ``classifier_weights`` option; its
  name is the hash of those weights, so its rows never pass for the shipped classifier's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gans.data import Dataset, resolve_directory
from gans.storage import save_atomically, sha256_of_file

_log = logging.getLogger(__name__)

CACHE_DIR_ENV = "GANS_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/gans")
# Bump when the architecture, the training recipe or the feature layers change: old cache files
# then stop matching, and the registered name changes with it. 2: trained at TRAIN_THREADS,
# unit-length penultimate features for the neighbour metrics.
CLASSIFIER_CODE_VERSION = "2"
# Bump when the keys of a weights file change. 1: cache files of state_dict and accuracy only;
# 2: the record that train_weights returns. The cache file name carries it, so older cache files
# are not read (and are retrained once).
WEIGHTS_FORMAT = 2
PENULTIMATE = "penultimate"  # 128-d ReLU activations: FID, KID
PENULTIMATE_UNIT = "penultimate-unit"  # the same at unit length: precision/recall, density/coverage
LOGITS = "logits"  # class logits: IS (torch-fidelity applies the softmax itself)

# Measured on mnist-5k: 97.6% held-out accuracy (at TRAIN_THREADS); 8 epochs without the
# shift augmentation plateau at 96.5% (4000 training digits are few).
EPOCHS = 20
BATCH_SIZE = 128
MAX_LR = 3e-3  # peak of a one-cycle schedule
MAX_SHIFT = 2  # pixels of random translation per batch: cheap augmentation for small data
SEED = 0
# Intra-op threads the classifier trains with. CPU kernels split their reductions (convolution
# gradients, batch sums) by thread count, so the rounding, and after 640 Adam steps the weights,
# depend on it: trained at 1 thread (a benchmark worker) and at 2 (the tests) the networks differed
# by up to 0.245 in a weight. One fixed count makes the weights a function of data and code; 1 is
# what a worker process runs with anyway, and costs ~14 s on mnist-5k (2 shared cores). Another
# CPU's kernels (another instruction set) may still round differently: the name, a hash of the
# weights, then tells the two networks apart.
TRAIN_THREADS = 1

TRAIN_COMMAND = "python -m gans.train_classifier"
WEIGHTS_DIR = Path(__file__).with_name("classifier_weights")  # shipped files, package data


@dataclass(frozen=True)
class ShippedWeights:
    """A classifier trained once by ``TRAIN_COMMAND`` and installed with the package; the values
    are what the command printed (see gans/train_classifier.py for the steps)."""

    file: str  # under WEIGHTS_DIR
    sha256: str  # of the file, checked before it is read
    data_sha256: str  # _content_hash of the data it was trained on: other data train their own
    accuracy: float  # on the dataset's test split


SHIPPED = {
    # Trained on an AMD EPYC (Zen 4) with torch 2.14.1: the network of the committed reports.
    "mnist-5k": ShippedWeights(
        file="mnist-5k.pt",
        sha256="a5ee1a4203a44523164281fd77aafd4b9d3b0d6c0bc24ba4cdda72722ff071d5",
        data_sha256="b7c25bfbc61321d63dce9d03b5868f27646895fe40c12f58bd3979dc20b6d014",
        accuracy=0.976,
    ),
}


class ClassifierWeightsError(ValueError):
    """A weights file is damaged, of another format or code version, or does not fit the data;
    the message is one line naming the file, the problem and what to do."""


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Parent directory of every cache this package writes (``classifiers/``, ``fidelity_cache/``).

    Args:
        cache_dir: explicit directory; wins over the environment.

    Returns:
        ``cache_dir`` if given, else ``$GANS_CACHE_DIR``, else ``~/.cache/gans``, user-expanded.
    """
    return resolve_directory(cache_dir, CACHE_DIR_ENV, DEFAULT_CACHE_DIR)


class DigitClassifier(nn.Module):
    """Two strided 5x5 conv blocks, a 128-d penultimate layer and logits; input in [-1, 1]."""

    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        # Strided convolutions instead of conv + max-pool: 4x less compute, same accuracy here.
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(32 * ((size + 3) // 4) ** 2, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        penultimate = self.features(x)
        return penultimate, self.head(penultimate)


@dataclass(frozen=True)
class ClassifierInfo:
    """A trained classifier registered with torch-fidelity."""

    name: str  # registered extractor name: "classifier-<dataset>-<hash of weights, 12 hex>"
    accuracy: float  # on the test split of the data it was trained on, never seen in training
    path: Path  # its weights file: shipped, cached (found by a hash of the data) or given
    feature_layer_fid: str = PENULTIMATE  # also used for KID
    feature_layer_prc: str = PENULTIMATE_UNIT  # also used for density/coverage
    feature_layer_isc: str = LOGITS


# Registered name -> (architecture arguments, state dict); torch-fidelity instantiates extractors by
# name, so the weights must be reachable from the name alone.
_TRAINED: dict[str, tuple[tuple[int, int, int], dict[str, torch.Tensor]]] = {}


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity view of a ``DigitClassifier``: uint8 images in, the requested layers out."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        arch, state_dict = _TRAINED[name]
        self.classifier = DigitClassifier(*arch)
        self.classifier.load_state_dict(state_dict)

    @staticmethod
    def get_provided_features_list():
        return PENULTIMATE, PENULTIMATE_UNIT, LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": LOGITS, "prc": PENULTIMATE_UNIT}.get(metric, PENULTIMATE)

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None

    def forward(self, x):
        # torch-fidelity hands extractors uint8 0..255 images; the classifier learnt on [-1, 1].
        if x.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images, got {x.dtype}")
        penultimate, logits = self.classifier(x.float() / 127.5 - 1)
        unit = F.normalize(penultimate, dim=1)
        features = {PENULTIMATE: penultimate, PENULTIMATE_UNIT: unit, LOGITS: logits}
        return tuple(features[name] for name in self.features_list)


_KNOWN: weakref.WeakKeyDictionary[Dataset, dict[tuple[Path, Path | None], ClassifierInfo]] = (
    weakref.WeakKeyDictionary()
)


def classifier_extractor(
    dataset: Dataset,
    cache_dir: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
) -> ClassifierInfo:
    """Register the dataset's classifier as a torch-fidelity extractor: the shipped one where the
    data are those it was trained on (``SHIPPED``), else one trained here and cached.

    Args:
        dataset: a labelled image dataset; trained on ``train``, accuracy measured on ``test``.
        cache_dir: parent of the ``classifiers/`` cache; see ``resolve_cache_dir``.
        weights: a weights file written by ``python -m gans.train_classifier``, used instead: a
            classifier retrained on purpose. ``dataset`` then only has to match its image shape.

    Returns:
        The registered extractor's name, held-out accuracy and feature layers. Calling again with
        the same data loads the same weights and does not register twice.

    Raises:
        ClassifierWeightsError: a weights file (shipped, cached or given) is damaged, of another
            format or code version, or made for images of another shape.
        ValueError: a classifier is to be trained and ``dataset`` is not labelled images.
    """
    key = (resolve_cache_dir(cache_dir), None if weights is None else Path(weights).expanduser())
    # A run evaluates the same Dataset object many times: hash its data and read the weights once.
    known = _KNOWN.setdefault(dataset, {})
    if key not in known:
        known[key] = _register(*_find_weights(dataset, *key))
    return known[key]


def train_weights(dataset: Dataset) -> dict:
    """Train ``dataset``'s classifier: the record a weights file holds.

    Returns:
        format, dataset (its name), arch (channels, size, classes), data_sha256 (of the training
        data and code version), code_version, accuracy (on the test split), weights_sha256 (what
        the registered name abbreviates) and state_dict.

    Raises:
        ValueError: ``dataset`` is not labelled images.
    """
    _check_labelled(dataset)
    arch = (dataset.sample_shape[0], dataset.sample_shape[1], len(dataset.class_names))
    state_dict, accuracy = _train(dataset, arch)
    return {
        "format": WEIGHTS_FORMAT,
        "dataset": dataset.name,
        "arch": arch,
        "data_sha256": _content_hash(dataset),
        "code_version": CLASSIFIER_CODE_VERSION,
        "accuracy": accuracy,
        "weights_sha256": _weights_hash(state_dict),
        "state_dict": state_dict,
    }


def _find_weights(dataset: Dataset, cache_root: Path, given: Path | None) -> tuple[dict, Path]:
    if given is not None:
        again = f"write it again with {TRAIN_COMMAND} DATASET --out {given}"
        return _check_fits(_read_weights(given, again), dataset, given), given
    _check_labelled(dataset)
    shipped = SHIPPED.get(dataset.name)
    data_hash = _content_hash(dataset)
    if shipped is not None and shipped.data_sha256 == data_hash:
        path = WEIGHTS_DIR / shipped.file
        return _read_weights(path, "reinstall gan-loss-benchmark", shipped.sha256), path
    if shipped is not None:
        _log.warning(
            "%s: not using the shipped classifier %s: its training data (or code version) hash "
            "to %s, these to %s; training one here, named by the hash of its weights",
            dataset.name,
            WEIGHTS_DIR / shipped.file,
            shipped.data_sha256[:12],
            data_hash[:12],
        )
    base = dataset.name.replace(":", "-")
    path = cache_root / "classifiers" / f"{base}-{data_hash}-format{WEIGHTS_FORMAT}.pt"
    if path.exists():
        return _read_weights(path, "delete it and it is trained again"), path
    record = train_weights(dataset)
    save_atomically(record, path)
    return record, path


def _check_labelled(dataset: Dataset) -> None:
    if dataset.kind != "image" or dataset.train_labels is None or not dataset.class_names:
        raise ValueError(f"dataset {dataset.name!r} needs labelled images to train a classifier")


def _read_weights(path: Path, remedy: str, sha256: str | None = None) -> dict:
    """The record of a weights file, checked against ``sha256`` (of the file) where known, and
    always against the hash of its weights that the file records."""

    def refused(problem: str) -> ClassifierWeightsError:
        return ClassifierWeightsError(f"classifier weights {path}: {problem}; {remedy}")

    if sha256 is not None and (found := sha256_of_file(path)) != sha256:
        raise refused(f"SHA-256 is {found}, expected {sha256}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        # torch's unpickling errors run to a dozen lines: the kind of error says enough.
        reason = error.strerror if isinstance(error, OSError) else type(error).__name__
        raise refused(f"cannot be read ({reason})") from error
    keys = {"dataset", "arch", "code_version", "accuracy", "weights_sha256", "state_dict"}
    if not (isinstance(record, dict) and record.get("format") == WEIGHTS_FORMAT) or not (
        keys <= record.keys()
    ):
        raise refused(f"not a weights file of format {WEIGHTS_FORMAT}")
    if record["code_version"] != CLASSIFIER_CODE_VERSION:
        raise refused(
            f"written by classifier code version {record['code_version']}, "
            f"this is {CLASSIFIER_CODE_VERSION}"
        )
    if (found := _weights_hash(record["state_dict"])) != record["weights_sha256"]:
        raise refused(f"weights hash to {found}, the file records {record['weights_sha256']}")
    return record


def _check_fits(record: dict, dataset: Dataset, path: Path) -> dict:
    channels, size, _ = record["arch"]
    if dataset.kind != "image" or dataset.sample_shape != (channels, size, size):
        shape = "x".join(map(str, dataset.sample_shape))
        raise ClassifierWeightsError(
            f"classifier weights {path}: trained on {record['dataset']!r}, images of "
            f"{channels}x{size}x{size}; dataset {dataset.name!r} has rows of {shape}"
        )
    return record


def _register(record: dict, path: Path) -> ClassifierInfo:
    name = f"classifier-{record['dataset'].replace(':', '-')}-{record['weights_sha256'][:12]}"
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        _TRAINED[name] = (tuple(record["arch"]), record["state_dict"])
        torch_fidelity.register_feature_extractor(name, ClassifierFeatureExtractor)
    return ClassifierInfo(name=name, accuracy=float(record["accuracy"]), path=path)


def _content_hash(dataset: Dataset) -> str:
    digest = hashlib.sha256(CLASSIFIER_CODE_VERSION.encode())
    for tensor in (dataset.train, dataset.train_labels):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _weights_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a classifier's weights and of ``CLASSIFIER_CODE_VERSION``.

    The version is hashed too because it also covers how features are read from the weights: a
    new feature layer changes every value the same weights produce.
    """
    digest = hashlib.sha256(CLASSIFIER_CODE_VERSION.encode())
    for key, tensor in state_dict.items():
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _train(dataset: Dataset, arch: tuple[int, int, int]) -> tuple[dict[str, torch.Tensor], float]:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(TRAIN_THREADS)
    # An operation without a deterministic kernel raises rather than vary from run to run. This
    # fixes the network for one CPU kind and torch version, not across CPU kinds (their kernels
    # round differently), which is why the registered name carries the hash of the weights.
    torch.use_deterministic_algorithms(True)
    try:
        return _fit(dataset, arch)
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def _fit(dataset: Dataset, arch: tuple[int, int, int]) -> tuple[dict[str, torch.Tensor], float]:
    x, y = dataset.train.detach().cpu(), dataset.train_labels.cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = DigitClassifier(*arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=MAX_LR)
    steps_per_epoch = -(-len(x) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=MAX_LR, total_steps=EPOCHS * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)  # dropout masks
        for _ in range(EPOCHS):
            for idx in torch.randperm(len(x), generator=generator).split(BATCH_SIZE):
                optimizer.zero_grad()
                F.cross_entropy(model(_shift(x[idx], generator))[1], y[idx]).backward()
                optimizer.step()
                schedule.step()
    model.eval()
    with torch.no_grad():
        predicted = model(dataset.test.detach().cpu())[1].argmax(dim=1)
    correct = (predicted == dataset.test_labels.cpu()).sum().item()
    return model.state_dict(), correct / len(predicted)


def _shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Pad with the background value (-1) so shifted-in pixels look like the rest of the border.
    padded = F.pad(batch, (MAX_SHIFT,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * MAX_SHIFT + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + batch.shape[2], dx : dx + batch.shape[3]]
