"""One entry point for evaluating a trainer's generator, whatever the kind of data, and the same
evaluation of real data: the floor that a generator's metrics are read against."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable
from pathlib import Path

import ot
import torch

from gans.data import Dataset
from gans.feature_extractor_classifier import classifier_extractor, resolve_cache_dir
from gans.metrics import W1, MetricRow
from gans.metrics_image import (
    CLASSIFIER,
    INCEPTION,
    LIBRARY,
    LIBRARY_PRDC,
    REQUESTS,
    InceptionUnavailable,
    _file_hash,
    evaluate_images,
    find_inception_weights,
)
from gans.metrics_toy import critic_fit, evaluate_points
from gans.storage import write_atomically
from gans.trainer import Trainer

# Bump when how the floor is drawn changes: rows cached by earlier code then stop matching.
REFERENCE_FORMAT = 1
REFERENCES_DIR = "references"  # under the cache directory, beside classifiers/ and fidelity_cache/


def evaluate(trainer: Trainer, n_fake: int, eval_seed: int = 0, **image_options) -> list[MetricRow]:
    """Metrics of ``trainer``'s current generator against the held-out (test) split.

    Image data get torch-fidelity's FID/IS/KID/precision/recall (``image_options`` go to
    ``evaluate_images``: extractor, metrics, n_real, cache_dir, inception_weights,
    classifier_data, classifier_weights); toy points get exact W1 and, for Gaussian mixtures,
    mode metrics, against ``n_fake`` test points, and with a frozen generator the critic's fit
    (``critic_fit``). Samples are drawn with ``eval_seed``, apart from the training streams.
    """
    rng = torch.Generator(trainer.device).manual_seed(eval_seed)
    # Scored in float32 whatever the run trained in: an fp64 run is measured as its fp32 run is
    # (and a classifier's cache key, a hash of the data's bytes, finds the same classifier).
    data = trainer.eval_data
    if not (trainer.config.freeze_generator and data.kind == "points"):
        return _score(
            lambda n: trainer.generate(n, rng).float(),
            data,
            n_fake,
            eval_seed,
            trainer.device,
            image_options,
        )
    # A frozen generator: the question is the critic, so its fit is scored too.
    with torch.no_grad():
        fake = trainer.generate(n_fake, rng)
    rows = _score(fake.float(), data, n_fake, eval_seed, trainer.device, image_options)
    real = trainer.data.test[:n_fake]
    w1 = next(row.value for row in rows if row.metric == W1)
    return rows + critic_fit(trainer.critic, fake, real, w1, eval_seed)


def evaluate_real(
    data: Dataset,
    n_fake: int,
    eval_seed: int = 0,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
    **image_options,
) -> list[MetricRow]:
    """The metrics real data get in a generator's place: the floor of ``evaluate``'s numbers.

    ``n_fake`` rows of the train split, a random subset drawn with ``eval_seed`` (image splits are
    sorted by class), are scored exactly as ``evaluate`` scores ``n_fake`` generated samples
    against the test split, so a generator's FID or W1 can be read against what real data score
    at the same sample counts. The rows are cached as JSON under ``<cache_dir>/references/``,
    keyed by the data, the counts, the options, the extractor and the library versions; rows
    that could not be measured (Inception weights missing) are returned but not cached, so a
    later call that has the weights computes them.

    Args:
        data: the dataset; its train split stands in for generated samples.
        n_fake: train rows scored, the generated sample count they stand for.
        eval_seed: draws the train subset and seeds the metrics, as in ``evaluate``.
        device: where image features are extracted.
        cache_dir: parent of ``references/`` (and the image caches); see ``resolve_cache_dir``.
        image_options: as for ``evaluate`` (extractor, metrics, n_real, inception_weights,
            classifier_data, classifier_weights); toy points take none.

    Returns:
        The rows ``evaluate`` would return for a generator as good as the data.

    Raises:
        ValueError: the train split has fewer than ``n_fake`` rows.
    """
    if n_fake > len(data.train):
        raise ValueError(
            f"a real-data floor of {data.name!r} at n_fake={n_fake} needs as many train rows; "
            f"the split has {len(data.train)}"
        )
    path = _cached_path(data, n_fake, eval_seed, cache_dir, image_options)
    if path is not None and path.exists():
        return [MetricRow(**row) for row in json.loads(path.read_text())["rows"]]
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(eval_seed))
    real = data.train.detach().cpu()[order[:n_fake]]
    rows = _score(real, data, n_fake, eval_seed, device, {"cache_dir": cache_dir, **image_options})
    if path is not None:
        text = json.dumps({"rows": [row.as_dict() for row in rows]}, indent=1)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text))
    return rows


def _score(
    samples: Callable[[int], torch.Tensor] | torch.Tensor,
    data: Dataset,
    n_fake: int,
    eval_seed: int,
    device: str | torch.device,
    image_options: dict,
) -> list[MetricRow]:
    """Metrics of ``samples`` (a tensor of at least ``n_fake`` rows, or ``samples(n)`` drawing
    them) against ``data``'s test split."""
    if data.kind == "image":
        return evaluate_images(
            samples, data, n_fake=n_fake, eval_seed=eval_seed, device=device, **image_options
        )
    points = samples[:n_fake] if isinstance(samples, torch.Tensor) else samples(n_fake)
    # Toy test splits are i.i.d. draws, so their first rows are a fair sample.
    return evaluate_points(points, data.test[:n_fake], data.name, eval_seed)


def _version() -> str:
    try:
        return importlib.metadata.version("gan-loss-benchmark")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return "not installed"


def _cached_path(
    data: Dataset, n_fake: int, eval_seed: int, cache_dir, image_options: dict
) -> Path | None:
    """Where the floor's rows are cached; None when they are not to be: without Inception
    weights there is nothing to measure yet."""
    digest = hashlib.sha256(data.name.encode())
    for split in (data.train, data.test):
        digest.update(split.detach().cpu().contiguous().numpy().tobytes())
    key = {
        "format": REFERENCE_FORMAT,
        "dataset": data.name,
        "data": digest.hexdigest(),
        "n_fake": n_fake,
        "eval_seed": eval_seed,
        "gans": _version(),
    }
    if data.kind == "image":
        extractor = image_options.get("extractor", CLASSIFIER)
        if extractor == INCEPTION:
            try:
                weights = find_inception_weights(image_options.get("inception_weights"))
            except InceptionUnavailable:
                return None
            # Features, and so every value, depend on the weights file, not only its name.
            extractor = f"{INCEPTION}-{_file_hash(weights)}"
        else:
            labelled = image_options.get("classifier_data") or data
            # The classifier's name carries a hash of its weights: the same name, the same network.
            weights = image_options.get("classifier_weights")
            extractor = classifier_extractor(labelled, cache_dir, weights).name
        key.update(
            extractor=extractor,
            metrics=sorted(image_options.get("metrics", REQUESTS)),
            n_real=image_options.get("n_real"),
            split=image_options.get("split", "test"),
            library=[LIBRARY, LIBRARY_PRDC],
        )
    else:
        key.update(library=f"POT {ot.__version__}")
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return resolve_cache_dir(cache_dir) / REFERENCES_DIR / f"{name}.json"
