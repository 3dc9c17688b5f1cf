"""The seeded percentile bootstrap that every interval of the report and the speed command uses."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
# A bootstrap over two seeds can only resample {x1, x2, mean}: no interval worth printing.
MIN_SEEDS_FOR_CI = 3
BOOTSTRAP_SEED = 0  # fixed: the same tables give the same intervals
BOOTSTRAP_RESAMPLES = 9999  # scipy's default


def bootstrap_ci(samples: tuple[np.ndarray, ...], statistic) -> tuple[float, float]:
    """Percentile bootstrap CI (seeded), or NaNs when a sample has fewer than MIN_SEEDS_FOR_CI."""
    if min(len(s) for s in samples) < MIN_SEEDS_FOR_CI:
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):  # no spread: the interval is the point
        value = float(statistic(*samples))
        return value, value
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,  # statistic(*samples, axis=-1) over all resamples at once
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
