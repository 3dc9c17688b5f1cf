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
CLASSIFIER_ACCURACY = "classifier_accuracy"  # held-out accuracy of the classifier extractor
W1 = "w1"  # exact Wasserstein-1 between generated and real points (toy data)
MODES_COVERED = "modes_covered"  # number of mixture modes covered (toy data)
HIGH_QUALITY = "high_quality_fraction"  # share of samples within 3 std of a mode (toy data)


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
