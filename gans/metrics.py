"""What every evaluation returns: long-form metric rows with their provenance.

A row carries the sample counts, the split, the seed, the feature extractor and the version of the
library that computed it, so tables never mix numbers that are not comparable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Metric names (constants, so tables and reports agree on spelling).
FID = "fid"
IS = "is"
IS_STD = "is_std"
KID = "kid"
KID_STD = "kid_std"
PRECISION = "precision"
RECALL = "recall"
DENSITY = "density"  # Naeem et al. 2020: fidelity counted over real neighbourhoods
COVERAGE = "coverage"  # Naeem et al. 2020: diversity as real neighbourhoods reached
CLASSIFIER_ACCURACY = "classifier_accuracy"  # held-out accuracy of the classifier extractor
W1 = "w1"  # exact Wasserstein-1 between generated and real points (toy data)
MODES_COVERED = "modes_covered"  # number of mixture modes covered (toy data)
HIGH_QUALITY = "high_quality_fraction"  # share of samples within 3 std of a mode (toy data)
# Runs with a frozen generator (toy data): how much of W1 the critic captures once made 1-Lipschitz
CRITIC_LIPSCHITZ = "critic_lipschitz"  # largest input-gradient norm found (a lower bound on L)
CRITIC_W1_FRACTION = "critic_w1_fraction"  # (E D(real) - E D(fake)) / CRITIC_LIPSCHITZ / W1

# Which way is better, for marking the best strategy and wording comparisons.
LOWER_IS_BETTER = (FID, KID, W1)
HIGHER_IS_BETTER = (
    IS,
    PRECISION,
    RECALL,
    DENSITY,
    COVERAGE,
    MODES_COVERED,
    HIGH_QUALITY,
    CRITIC_W1_FRACTION,
)

# One line each, for listings and reports.
DESCRIPTIONS = {
    FID: "Frechet distance between real and generated features (lower is better)",
    IS: "Inception score of generated images (higher is better)",
    IS_STD: "standard deviation of the Inception score over splits",
    KID: "kernel Inception distance, unbiased MMD of features (lower is better)",
    KID_STD: "standard deviation of KID over subsets",
    PRECISION: "share of generated samples inside the real manifold (quality)",
    RECALL: "share of real samples inside the generated manifold (diversity)",
    DENSITY: "real k-NN balls per generated sample, over k; about 1 for real data (quality)",
    COVERAGE: "share of real samples whose neighbourhood holds a generated one (diversity)",
    CLASSIFIER_ACCURACY: "held-out accuracy of the classifier feature extractor",
    W1: "exact Wasserstein-1 distance to real points (toy data, lower is better)",
    MODES_COVERED: "mixture modes that receive generated points (toy data)",
    HIGH_QUALITY: "share of generated points within 3 std of a mode (toy data)",
    CRITIC_LIPSCHITZ: "largest input-gradient norm of the critic over real, generated and "
    "interpolated points (frozen-generator runs)",
    CRITIC_W1_FRACTION: "the critic's estimate over its Lipschitz constant, as a share of exact W1 "
    "(frozen-generator runs; 1: an optimal critic)",
}


@dataclass(frozen=True)
class MetricRow:
    """One measured value, or the reason it could not be measured (then ``value`` is NaN)."""

    metric: str
    value: float
    feature_extractor: str  # e.g. "inception-v3-compat", "classifier-mnist-5k-<hash>", "points"
    n_real: int
    n_fake: int
    real_split: str  # "train" or "test"
    eval_seed: int
    library: str  # what computed it, with version, e.g. "torch-fidelity 0.4.0", "POT 0.9.7"
    unavailable: str | None = None  # why there is no value, e.g. "Inception weights not found"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
