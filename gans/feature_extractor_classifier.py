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

The weights are cached under a hash of the training data and this code's version; the registered
name carries a hash of the trained weights themselves (and of the code version, which also says
how features are read from them), so two rows that name the same extractor were computed by the
same network. Training runs at a fixed thread count (``TRAIN_THREADS``), so
the network does not depend on the process that happened to train it first.
"""

from __future__ import annotations

import hashlib
import os
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
from gans.storage import save_atomically

CACHE_DIR_ENV = "GANS_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/gans")
# Bump when the architecture, the training recipe or the feature layers change: old cache files
# then stop matching, and the registered name changes with it. 2: trained at TRAIN_THREADS,
# unit-length penultimate features for the neighbour metrics.
CLASSIFIER_CODE_VERSION = "2"
PENULTIMATE = "penultimate"  # 128-d ReLU activations: FID, KID
PENULTIMATE_UNIT = "penultimate-unit"  # the same at unit length: precision/recall, density/coverage
LOGITS = "logits"  # class logits: IS (torch-fidelity applies the softmax itself)

# Measured on mnist-5k: 97.5% held-out accuracy (at TRAIN_THREADS); 8 epochs without the
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
    accuracy: float  # on the dataset's test split, never seen in training
    path: Path  # cached weights, found by a hash of the training data
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


_KNOWN: weakref.WeakKeyDictionary[Dataset, dict[Path, ClassifierInfo]] = weakref.WeakKeyDictionary()


def classifier_extractor(
    dataset: Dataset, cache_dir: str | os.PathLike | None = None
) -> ClassifierInfo:
    """Train (or load) the dataset's classifier and register it as a torch-fidelity extractor.

    Args:
        dataset: a labelled image dataset; trained on ``train``, accuracy measured on ``test``.
        cache_dir: parent of the ``classifiers/`` cache; see ``resolve_cache_dir``.

    Returns:
        The registered extractor's name, held-out accuracy and feature layers. Calling again with
        the same data loads the cached weights and does not register twice.
    """
    if dataset.kind != "image" or dataset.train_labels is None or not dataset.class_names:
        raise ValueError(f"dataset {dataset.name!r} needs labelled images to train a classifier")
    cache_root = resolve_cache_dir(cache_dir)
    # A run evaluates the same Dataset object many times: hash its data and read the weights once.
    known = _KNOWN.setdefault(dataset, {})
    if cache_root not in known:
        known[cache_root] = _load_or_train(dataset, cache_root)
    return known[cache_root]


def _load_or_train(dataset: Dataset, cache_root: Path) -> ClassifierInfo:
    base = dataset.name.replace(":", "-")
    path = cache_root / "classifiers" / f"{base}-{_content_hash(dataset)}.pt"
    arch = (dataset.sample_shape[0], dataset.sample_shape[1], len(dataset.class_names))
    if path.exists():
        saved = torch.load(path, weights_only=True)
    else:
        saved = _train(dataset, arch)
        save_atomically(saved, path)
    name = f"classifier-{base}-{_weights_hash(saved['state_dict'])[:12]}"
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        _TRAINED[name] = (arch, saved["state_dict"])
        torch_fidelity.register_feature_extractor(name, ClassifierFeatureExtractor)
    return ClassifierInfo(name=name, accuracy=float(saved["accuracy"]), path=path)


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


def _train(dataset: Dataset, arch: tuple[int, int, int]) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return _fit(dataset, arch)
    finally:
        torch.set_num_threads(threads)


def _fit(dataset: Dataset, arch: tuple[int, int, int]) -> dict:
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
    accuracy = (predicted == dataset.test_labels.cpu()).float().mean().item()
    return {"state_dict": model.state_dict(), "accuracy": torch.tensor(accuracy)}


def _shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Pad with the background value (-1) so shifted-in pixels look like the rest of the border.
    padded = F.pad(batch, (MAX_SHIFT,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * MAX_SHIFT + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + batch.shape[2], dx : dx + batch.shape[3]]
