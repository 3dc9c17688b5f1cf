"""The measures of the training claims on hand-made tables, where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import gans
from benchmarks import claims_training
from benchmarks.claim import CLAIMS, measure_claim
from benchmarks.claims_builtin import MNIST

UNTRAINED, FLOOR = 400.0, 25.0  # threshold: their geometric mean, 100


def hand_made_tables(times: dict[str, list[float | None]], budget_s=40.0):
    """mnist-5k runs whose intermediate FID falls from 400 to 50 at the given training seconds
    (None: it stays at 150, above the threshold, until its budget)."""
    runs, evals = [], []
    for strategy, reached in times.items():
        for seed, at in enumerate(reached):
            run_id = f"{strategy}-{seed}"
            runs.append(
                {
                    "run_id": run_id,
                    "strategy": strategy,
                    "dataset": "mnist-5k",
                    "seed": seed,
                    "status": gans.DONE,
                    "train_s": budget_s,
                    "intermediate_samples": 500,
                }
            )
            for step in range(0, 9):
                seconds = step * budget_s / 8
                if step == 0:
                    fid = UNTRAINED
                elif at is not None and seconds >= at:
                    fid = 50.0
                else:
                    fid = 150.0
                evals.append(
                    {
                        "run_id": run_id,
                        "strategy": strategy,
                        "dataset": "mnist-5k",
                        "gen_iter": step * 50,
                        "elapsed_s": seconds,
                        "stage": "intermediate",
                        "metric": "fid",
                        "feature_extractor": "classifier",
                        "value": fid,
                    }
                )
    floors = pd.DataFrame(
        [
            {
                "dataset": "mnist-5k",
                "reference": "real data",
                "stage": "intermediate",
                "metric": "fid",
                "feature_extractor": "classifier",
                "value": FLOOR,
            }
        ]
    )
    return {
        MNIST.name: {
            "runs": pd.DataFrame(runs),
            "evals": pd.DataFrame(evals),
            "references": floors,
            "curves": pd.DataFrame(),
        }
    }


def test_time_to_threshold_counts_runs_that_never_reach_it_as_censored_and_slowest():
    # Evaluations every 5 s: a run that reaches FID 50 at 10 s is first seen there.
    tables = hand_made_tables(
        {"gan": [10, 10, 15, 20, None], "wgan-gp": [30, 35, None, None, None]}
    )
    groups = CLAIMS.get("gan-faster-in-wall-clock").measure(tables, "cpu")
    np.testing.assert_array_equal(groups.lower, [10, 10, 15, 20, math.inf])
    np.testing.assert_array_equal(groups.higher, [30, 35, math.inf, math.inf, math.inf])
    assert "threshold: FID 100.0 at 500 samples" in groups.notes[0]
    assert "gan: reached in 4 of 5 runs" in groups.notes[1]
    assert "wgan-gp: reached in 2 of 5 runs" in groups.notes[2]
    verdict = measure_claim(CLAIMS.get("gan-faster-in-wall-clock"), tables, "cpu")
    # gp's 30 and 35 are above 4 gan times and below the censored one (+3 each); each censored
    # gp run is above 4 and ties 1 (+4 each): (3 + 3 + 12) / 25.
    assert verdict.effect == pytest.approx(0.72)
    # The log-rank test in the notes: runs that never reached it censored at their 40 s.
    expected = stats.logrank(
        stats.CensoredData(uncensored=[30, 35], right=[40, 40, 40]),
        stats.CensoredData(uncensored=[10, 10, 15, 20], right=[40]),
    ).pvalue
    assert groups.notes[-1].endswith(f"p = {expected:.2g}")


def test_equal_times_are_no_effect():
    tables = hand_made_tables({"gan": [10, 15, None], "wgan-gp": [10, 15, None]})
    verdict = measure_claim(CLAIMS.get("gan-faster-in-wall-clock"), tables, "cpu")
    assert verdict.effect == pytest.approx(0.0, abs=1e-12)


def test_the_heldout_gap_is_the_heldout_loss_minus_the_training_loss_since_the_last_check():
    curves = pd.DataFrame(
        {
            "gen_iter": [1, 2, 3, 4, 5, 6],
            "critic_loss": [-1.0, -3.0, -2.0, -4.0, -6.0, -5.0],
            "heldout_critic_loss": [np.nan, np.nan, 0.0, np.nan, np.nan, -1.0],
        }
    )
    gaps = claims_training.heldout_gaps(curves)
    assert gaps["gen_iter"].tolist() == [3, 6]
    np.testing.assert_allclose(gaps["gap"], [0.0 - (-2.0), -1.0 - (-5.0)])
