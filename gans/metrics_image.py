"""FID, IS, KID, precision/recall (torch-fidelity) and density/coverage (prdc) of generated images.

Each input's features are extracted once, with torch-fidelity's extractors and feature cache, and
every requested metric is computed from them. The real split is registered as a torch-fidelity
input whose name carries the dataset, split, sample count, channel layout and a hash of its
pixels; torch-fidelity caches features and FID statistics under that name plus the extractor's
name, so the real side is computed once.

What each metric tells, and what it cannot:

- FID and KID compare the two feature distributions as a whole (lower is better). They rank
  generators but mix fidelity with diversity: a worse number does not say which of the two fell.
  KID is unbiased at small sample counts; FID is not, so FIDs compare only at equal counts.
- Precision (fidelity) and recall (diversity), Kynkaenniemi et al. 2019, k = 3: the share of
  generated samples inside the union of the real samples' k-NN balls, and the reverse. One real
  outlier has a wide ball that can hold a whole cluster of bad samples, so precision can call
  junk realistic; recall over-credits generated outliers the same way.
- Density (fidelity) and coverage (diversity), Naeem et al. 2020, k = 5: density counts how many
  real balls hold each generated sample (divided by k; about 1 for real data, above 1 where
  samples crowd into dense real regions), so a sample inside a single outlier's ball adds
  1/k, not 1; coverage is the share of real samples whose own ball holds a generated sample, so
  only real neighbourhoods count. Density and coverage are the primary fidelity and diversity
  numbers here: they resist the outliers that inflate k-NN radii, and coverage is bounded and
  well-behaved at the sample counts used. Precision/recall are kept for comparison with the
  literature.
- None of the neighbour metrics sees past its feature space: for the classifier extractor,
  neighbours are compared on unit-length penultimate features (see
  ``gans.feature_extractor_classifier``). A fidelity metric may be high for one sample repeated
  (mode collapse is a diversity failure); recall and coverage are what catch it.
- IS rates generated images alone (confident and balanced class predictions), without the real
  split: it cannot tell memorised or blurred-but-classifiable digits from good ones.

Generated images are handed over as a plain dataset of uint8 images, not as a
``GenerativeModelModuleWrapper``: the wrapper feeds the module's raw output to the extractor (which
requires uint8) and draws the noise itself from numpy, so a tanh generator would need a wrapper
module anyway and could not reuse ``Trainer.generate``'s seeded torch noise.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset as TorchDataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.metric_fid import (
    fid_featuresdict_to_statistics_cached,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.metric_kid import kid_featuresdict_to_metric
from torch_fidelity.metric_prc import prc_featuresdict_to_metric
from torch_fidelity.registry import DATASETS_REGISTRY
from torch_fidelity.utils import (
    create_feature_extractor,
    extract_featuresdict_from_input_id_cached,
    get_cacheable_input_name,
    resolve_feature_layer_for_metric,
)

from gans.data import SPLITS, Dataset
from gans.feature_extractor_classifier import classifier_extractor, resolve_cache_dir
from gans.metrics import (
    CLASSIFIER_ACCURACY,
    COVERAGE,
    DENSITY,
    FID,
    IS,
    IS_STD,
    KID,
    KID_STD,
    PRECISION,
    RECALL,
    MetricRow,
)
from gans.storage import sha256_of_file

CLASSIFIER = "classifier"
INCEPTION = "inception-v3-compat"
EXTRACTORS = (CLASSIFIER, INCEPTION)
PRC = "prc"  # requests both precision and recall
DC = "dc"  # requests both density and coverage
INCEPTION_WEIGHTS_ENV = "GANS_INCEPTION_WEIGHTS"
LIBRARY = f"torch-fidelity {torch_fidelity.__version__}"
LIBRARY_PRDC = f"prdc {importlib.metadata.version('prdc')}"
# k of density and coverage, as Naeem et al. 2020 choose it: for two equal samples of one
# distribution coverage is then 1 - 2^-5 = 0.97 in expectation (measured for 1,000 train against
# the 1,000 test digits: coverage 0.94, density 0.93).
DC_NEIGHBOURS = 5
# torch-fidelity's default KID subset size and count; the size is smaller when there are fewer
# samples, and the count 1 when each subset would hold both whole sample sets (_kid_subsets)
KID_MAX_SUBSET = torch_fidelity.defaults.DEFAULTS["kid_subset_size"]
KID_SUBSETS = torch_fidelity.defaults.DEFAULTS["kid_subsets"]
KID_WHOLE_SETS = (  # the reason given with kid_std's NaN when KID was computed once
    "no spread over KID subsets: each would hold both whole sample sets (n_fake = n_real <= "
    f"{KID_MAX_SUBSET}), so KID was computed once on them"
)
GENERATE_CHUNK = 500  # images generated per call, to bound memory


@dataclass(frozen=True)
class _Request:
    """What one value of ``metrics`` computes, from the features of both inputs."""

    rows: tuple[tuple[str, str], ...]  # (metric name, key in the computed results) per row
    fidelity_metric: str  # torch-fidelity metric whose feature layer it reads
    compute: Callable  # (fake features, real features, layer, extractor, options) -> results
    library: str


def _fid(fake, real, layer, extractor, options) -> dict:
    # Statistics of the real input are cached under its registered name, as torch-fidelity does.
    statistics = [
        fid_featuresdict_to_statistics_cached(
            features, get_cacheable_input_name(slot, **options), extractor, layer, **options
        )
        for slot, features in ((1, fake), (2, real))
    ]
    return fid_statistics_to_metric(*statistics, verbose=False)


def _density_coverage(fake, real, layer, extractor, options) -> dict:
    import prdc  # with scikit-learn, 1.5 s to import: only when asked for

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
        found = prdc.compute_prdc(
            real_features=real[layer].numpy(),
            fake_features=fake[layer].numpy(),
            nearest_k=DC_NEIGHBOURS,
        )
    return {DENSITY: float(found["density"]), COVERAGE: float(found["coverage"])}


_REQUESTS = {
    FID: _Request(((FID, torch_fidelity.KEY_METRIC_FID),), "fid", _fid, LIBRARY),
    IS: _Request(
        ((IS, torch_fidelity.KEY_METRIC_ISC_MEAN), (IS_STD, torch_fidelity.KEY_METRIC_ISC_STD)),
        "isc",
        lambda fake, real, layer, extractor, options: isc_featuresdict_to_metric(
            fake, layer, **options
        ),
        LIBRARY,
    ),
    KID: _Request(
        ((KID, torch_fidelity.KEY_METRIC_KID_MEAN), (KID_STD, torch_fidelity.KEY_METRIC_KID_STD)),
        "kid",
        lambda fake, real, layer, extractor, options: kid_featuresdict_to_metric(
            fake, real, layer, **options
        ),
        LIBRARY,
    ),
    PRC: _Request(
        (
            (PRECISION, torch_fidelity.KEY_METRIC_PRECISION),
            (RECALL, torch_fidelity.KEY_METRIC_RECALL),
        ),
        "prc",
        lambda fake, real, layer, extractor, options: prc_featuresdict_to_metric(
            fake, real, layer, **options
        ),
        LIBRARY,
    ),
    # On the features precision/recall use: both pairs are neighbour metrics.
    DC: _Request(
        ((DENSITY, DENSITY), (COVERAGE, COVERAGE)), "prc", _density_coverage, LIBRARY_PRDC
    ),
}
REQUESTS = tuple(_REQUESTS)  # fid, is, kid, prc, dc


class InceptionUnavailable(RuntimeError):
    """Inception weights are neither on disk nor downloadable; the message is one short line."""


class _UInt8Images(TorchDataset):
    """Rows of an N x C x H x W uint8 tensor, the only input torch-fidelity's extractors accept."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def evaluate_images(
    generate: Callable[[int], torch.Tensor] | torch.Tensor,
    real: Dataset,
    *,
    n_fake: int,
    n_real: int | None = None,
    split: str = "test",
    extractor: str = CLASSIFIER,
    metrics: tuple[str, ...] = REQUESTS,
    eval_seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    classifier_data: Dataset | None = None,
    classifier_weights: str | os.PathLike | None = None,
) -> list[MetricRow]:
    """Compare generated images with a real split.

    Args:
        generate: ``generate(n)`` returning n images in [-1, 1] (called in chunks), or a tensor of
            at least ``n_fake`` such images.
        real: the dataset whose split the generated images are compared with.
        n_fake: number of generated images.
        n_real: number of real images, a random subset of the split drawn with ``eval_seed``
            (splits may be sorted by class); None: the whole split.
        split: ``"train"`` or ``"test"``.
        extractor: ``"classifier"`` (trained on ``real``) or ``"inception-v3-compat"``.
        metrics: any of ``"fid"``, ``"is"``, ``"kid"``, ``"prc"`` (precision and recall),
            ``"dc"`` (density and coverage).
        eval_seed: seeds torch-fidelity's KID subsets and IS split shuffling.
        cache_dir: parent of ``classifiers/`` and ``fidelity_cache/``; see ``resolve_cache_dir``.
        inception_weights: torch-fidelity Inception weights file; None: ``$GANS_INCEPTION_WEIGHTS``,
            else torch hub's checkpoint directory, else a download there.
        device: where features are extracted (and ``generate`` should produce its images).
        classifier_data: the labelled dataset whose train split trains the classifier extractor;
            None: ``real``. Pass the full dataset when ``real`` is a class subset such as
            ``mnist:7``: a classifier trained on one class says nothing.
        classifier_weights: a classifier weights file written by ``python -m
            gans.train_classifier``, used instead of the shipped or cached classifier; the rows
            then name it by the hash of its weights.

    Returns:
        One row per value: fid, is, is_std, kid, kid_std, precision, recall, density, coverage
        as requested, plus classifier_accuracy for the classifier. Without Inception weights the
        rows hold NaN and say why in ``unavailable``; so does kid_std when n_fake = n_real <=
        1000, where KID is computed once on the whole sets (``_kid_subsets``).
    """
    unknown = set(metrics) - set(REQUESTS)
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {REQUESTS}, got {metrics!r}")
    if extractor not in EXTRACTORS:
        raise ValueError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {extractor!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    real_images = getattr(real, split).detach().cpu()
    if n_real is not None and n_real < len(real_images):
        rows = torch.randperm(len(real_images), generator=torch.Generator().manual_seed(eval_seed))
        real_images = real_images[rows[:n_real].sort().values]
    n_real = len(real_images)
    cache_root = resolve_cache_dir(cache_dir)

    def row(
        metric: str, value: float, name: str, library: str = LIBRARY, unavailable: str | None = None
    ) -> MetricRow:
        return MetricRow(
            metric, value, name, n_real, n_fake, split, eval_seed, library, unavailable
        )

    extra_rows: list[MetricRow] = []
    options: dict = {"cache_root": str(cache_root / "fidelity_cache")}
    if extractor == CLASSIFIER:
        info = classifier_extractor(classifier_data or real, cache_dir, classifier_weights)
        name, rgb = info.name, False
        options.update(
            feature_layer_fid=info.feature_layer_fid,
            feature_layer_kid=info.feature_layer_fid,
            feature_layer_prc=info.feature_layer_prc,
            feature_layer_isc=info.feature_layer_isc,
        )
        extra_rows.append(row(CLASSIFIER_ACCURACY, info.accuracy, name))
    else:
        name, rgb = INCEPTION, True
        try:
            weights = find_inception_weights(inception_weights)
        except InceptionUnavailable as error:
            return [
                row(metric, math.nan, name, _REQUESTS[r].library, str(error))
                for r in metrics
                for metric, _ in _REQUESTS[r].rows
            ]
        # Real features are cached under the extractor's name, which is the same for every weights
        # file; a directory per weights file keeps features of different weights apart.
        options.update(
            feature_extractor_weights_path=str(weights),
            cache_root=str(cache_root / "fidelity_cache" / f"inception-{_file_hash(weights)[:12]}"),
        )

    kid_subsets = _kid_subsets(n_real, n_fake)
    results = _calculate(
        metrics,
        input1=_UInt8Images(_to_uint8(_draw(generate, n_fake), rgb)),
        input2=_register_real(real, split, real_images, rgb),
        feature_extractor=name,
        kid_subset_size=min(KID_MAX_SUBSET, n_real, n_fake),
        kid_subsets=kid_subsets,
        rng_seed=eval_seed,
        cuda=torch.device(device).type == "cuda",
        # Worker processes only add start-up cost for images already in memory.
        save_cpu_ram=True,
        # torch-fidelity creates datasets_root for registered inputs: ours, not $TORCH_HOME.
        datasets_root=str(cache_root / "fidelity_datasets"),
        verbose=False,
        **options,
    )
    rows = [
        row(metric, float(results[key]), name, _REQUESTS[r].library)
        for r in metrics
        for metric, key in _REQUESTS[r].rows
    ]
    if kid_subsets == 1:
        rows = [
            row(KID_STD, math.nan, name, unavailable=KID_WHOLE_SETS) if r.metric == KID_STD else r
            for r in rows
        ]
    return rows + extra_rows


def _calculate(requests: tuple[str, ...], **options) -> dict[str, float]:
    """The requested metrics from one feature extraction per input, with torch-fidelity's options.

    This is ``torch_fidelity.calculate_metrics`` for one extractor, opened up so that density and
    coverage read the same features: calling it and then extracting again for prdc would pass
    the generated images through the extractor twice (Inception: seconds per thousand on a CPU).
    """
    layers = {
        r: resolve_feature_layer_for_metric(_REQUESTS[r].fidelity_metric, **options)
        for r in requests
    }
    extractor = create_feature_extractor(
        options["feature_extractor"], sorted(set(layers.values())), **options
    )
    fake, real = (
        extract_featuresdict_from_input_id_cached(i, extractor, **options) for i in (1, 2)
    )
    results = {}
    for r in requests:
        results.update(_REQUESTS[r].compute(fake, real, layers[r], extractor, options))
    return results


def _kid_subsets(n_real: int, n_fake: int) -> int:
    """How many subsets KID averages over: torch-fidelity's default, or 1 when the subset size
    (at most ``KID_MAX_SUBSET``) is both sample counts. Subsets are drawn without replacement, so
    each would then be both whole sets in another order and give the same value: 100 of them
    took 1.0 s of a 1.1 s evaluation of 1,000 images, for a standard deviation of rounding noise."""
    return 1 if n_real == n_fake <= KID_MAX_SUBSET else KID_SUBSETS


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Locate torch-fidelity's Inception weights, downloading them if allowed by the network.

    Args:
        path: explicit weights file; wins over ``$GANS_INCEPTION_WEIGHTS``. An explicit file that
            does not exist is an error, not a reason to download.

    Returns:
        The weights file: ``path``, the environment's, or torch hub's checkpoint file (where
        torch-fidelity itself downloads it), fetched first if missing.

    Raises:
        InceptionUnavailable: the given file is missing, or the download failed.
    """
    given = path or os.environ.get(INCEPTION_WEIGHTS_ENV)
    if given:
        given = Path(given).expanduser()
        if not given.is_file():
            raise InceptionUnavailable(f"Inception weights not found at {given}")
        return given
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(URL_INCEPTION_V3)
    if not hub_file.is_file():
        hub_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(URL_INCEPTION_V3, str(hub_file), progress=False)
        except OSError as error:  # URLError and socket errors are OSErrors
            raise InceptionUnavailable(
                f"Inception weights not in {hub_file.parent} and download failed ({error}); "
                f"set {INCEPTION_WEIGHTS_ENV}"
            ) from error
    return hub_file


def _draw(generate: Callable[[int], torch.Tensor] | torch.Tensor, n: int) -> torch.Tensor:
    if isinstance(generate, torch.Tensor):
        if len(generate) < n:
            raise ValueError(f"n_fake={n} but only {len(generate)} images were given")
        return generate[:n].detach().cpu()
    with torch.no_grad():
        chunks = [
            generate(min(GENERATE_CHUNK, n - start)).detach().cpu()
            for start in range(0, n, GENERATE_CHUNK)
        ]
    return torch.cat(chunks)


def _to_uint8(images: torch.Tensor, rgb: bool) -> torch.Tensor:
    """[-1, 1] floats to 0..255 uint8; grayscale tiled to 3 channels when ``rgb`` (Inception)."""
    images = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if rgb and images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return images


def _register_real(real: Dataset, split: str, images: torch.Tensor, rgb: bool) -> str:
    # The pixel hash in the name keeps a changed dataset from reusing stale cached statistics.
    digest = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:12]
    layout = "rgb" if rgb else "gray"
    name = f"gans-{real.name.replace(':', '-')}-{split}-n{len(images)}-{layout}-{digest}"
    if name not in DATASETS_REGISTRY:
        torch_fidelity.register_dataset(
            name, lambda root, download: _UInt8Images(_to_uint8(images, rgb))
        )
    return name


@functools.cache
def _file_hash(path: Path) -> str:
    # Cached: Inception's weights are ~100 MB and every evaluation of a suite asks again.
    return sha256_of_file(path)
