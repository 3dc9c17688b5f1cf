"""The report's statistics on hand-made tables: every seed counts, the deciding test has power at
small n, the verdict agrees with the interval, and the answer and time to quality read the
reference values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import report_answer as answers
from benchmarks import report_stats as rs


def seeds(*values, diverged=0):
    return rs.Seeds(np.array(values, float), diverged)


def test_three_seeds_each_far_apart_are_significant_by_welch_on_the_log():
    # The issue's case: a 683-point FID gap with seeds' spread 1-28; Mann-Whitney's floor is 0.10.
    found = rs.compare("fid", "wgan", seeds(883, 884, 882), "wgan-gp", seeds(200, 172, 228))
    assert found.better == "wgan-gp"
    assert found.test == rs.WELCH_LOG
    assert found.p_rank == pytest.approx(0.1, abs=1e-9)
    assert found.p == pytest.approx(0.002966, rel=1e-3)  # Welch df ~ 2: far below 0.10
    assert found.low > 600 and found.high < 720
    geometric = np.exp(np.log([883, 884, 882]).mean() - np.log([200, 172, 228]).mean())
    assert found.ratio == pytest.approx(geometric, rel=1e-9)
    assert found.significant == rs.YES


def test_interleaved_seeds_are_no_clear_difference():
    found = rs.compare("w1", "a", seeds(10, 21, 12, 23, 14), "b", seeds(20, 11, 22, 13, 24))
    assert found.better == "a"  # lower mean W1, equal ranks
    assert found.p_rank == pytest.approx(0.6905, abs=1e-3)
    assert found.p > 0.5
    assert found.low < 0 < found.high
    assert found.significant == rs.NO


def test_a_diverged_seed_ranks_last_and_the_rank_test_decides():
    # Two survivors with the best values and three diverged seeds: the survivors' mean alone
    # would rank it first; every seed counted, the strategy that finished all five is better.
    fragile, steady = seeds(0.10, 0.11, diverged=3), seeds(0.30, 0.31, 0.32, 0.33, 0.34)
    found = rs.compare("w1", "fragile", fragile, "steady", steady)
    assert (found.better, found.worse) == ("steady", "fragile")
    assert found.test == rs.RANK
    assert found.effect == pytest.approx(2 * (15 / 25) - 1, abs=1e-9)  # U = 3*5 of 25 pairs
    assert found.significant == rs.NO


def test_two_seeds_each_are_too_few():
    found = rs.compare("fid", "a", seeds(10, 11), "b", seeds(500, 510))
    assert found.significant == rs.TOO_FEW
    assert "a strategy has 2 seed(s)" in rs.too_few_note([found])


def test_equal_means_up_to_float_rounding_are_the_same():
    # 0.015 and 0.015 summed in another order differ in the 18th digit; that is no difference.
    found = rs.compare(
        "high_quality_fraction", "a", seeds(0.02, 0.01, 0.015), "b", seeds(0.001, 0.029, 0.015)
    )
    assert found.difference == 0.0
    assert found.significant == rs.NO


def test_compare_interval_is_seeded_and_holds_the_difference():
    x, y = seeds(1.0, 2.0, 3.0, 4.0), seeds(3.0, 5.0, 4.0, 6.0)
    first, again = rs.compare("w1", "a", x, "b", y), rs.compare("w1", "a", x, "b", y)
    assert (first.low, first.high) == (again.low, again.high)
    assert first.difference == pytest.approx(2.0, abs=1e-12)
    assert first.low <= first.difference <= first.high


def _runs(statuses: dict[str, list[str]]) -> pd.DataFrame:
    rows = []
    for strategy, states in statuses.items():
        for seed, status in enumerate(states):
            rows.append(
                {
                    "run_id": f"{strategy}-{seed}",
                    "strategy": strategy,
                    "seed": seed,
                    "status": status,
                    "w1": 0.2 + 0.01 * seed if status == "done" else math.nan,
                    "gen_iters": 100,
                    "train_s": 10.0,
                    "eval_s": 1.0,
                }
            )
    return pd.DataFrame(rows)


def _evals(runs: pd.DataFrame, values: dict[str, list[float]]) -> pd.DataFrame:
    """w1 at gen_iter 0 (both stages), 50 and 100 (final) per run, elapsed 1 s per 10 iterations."""
    rows = []
    for run in runs.itertuples():
        series = values[run.strategy]
        for gen_iter, stage, value in (
            (0, "initial", 3.0),
            (0, "intermediate", 3.0),
            (50, "intermediate", series[0]),
            (100, "final", series[1]),
        ):
            if run.status == "diverged" and gen_iter == 100:
                continue
            rows.append(
                {
                    "run_id": run.run_id,
                    "strategy": run.strategy,
                    "gen_iter": gen_iter,
                    "elapsed_s": gen_iter / 10,
                    "stage": stage,
                    "metric": "w1",
                    "value": value,
                    "feature_extractor": "points",
                    "unavailable": None,
                }
            )
    return pd.DataFrame(rows)


FLOORS = pd.DataFrame(
    [
        {"stage": stage, "metric": "w1", "value": 0.03, "feature_extractor": "points"}
        for stage in ("intermediate", "final")
    ]
)


def test_a_diverged_seed_shows_its_last_evaluation_before_diverging():
    runs = _runs({"a": ["done", "diverged"]})
    values = rs.seed_values(runs, _evals(runs, {"a": [0.5, 0.25]}), ["w1"])
    diverged = values[values["status"] == "diverged"].iloc[0]
    assert diverged["value"] == pytest.approx(0.5, abs=1e-12)  # gen_iter 50, not the initial 3.0
    assert diverged["counted"] == rs.LAST_GOOD


def test_references_and_the_quality_threshold():
    runs = _runs({"a": ["done"] * 3})
    refs = rs.references(_evals(runs, {"a": [0.5, 0.25]}), FLOORS)
    assert rs.reference_value(refs, rs.UNTRAINED, rs.FINAL, "w1") == pytest.approx(3.0, abs=1e-12)
    assert rs.reference_value(refs, rs.REAL_DATA, rs.FINAL, "w1") == pytest.approx(0.03, abs=1e-12)
    # Halfway on the log scale: the geometric mean of 3.0 and 0.03.
    threshold = answers.quality_threshold(refs, "w1", rs.FINAL)
    assert threshold == pytest.approx(0.3, rel=1e-12)


def test_time_to_quality_counts_runs_that_never_reach_it():
    runs = _runs(
        {"fast": ["done"] * 3, "slow": ["done"] * 3, "never": ["done", "done", "diverged"]}
    )
    evals = _evals(runs, {"fast": [0.2, 0.1], "slow": [0.5, 0.25], "never": [1.0, 0.9]})
    found = {
        t.strategy: t
        for t in answers.time_to_quality(runs, evals, rs.references(evals, FLOORS), "w1")
    }
    assert (found["fast"].reached, found["fast"].median_s, found["fast"].median_iters) == (
        3,
        5.0,
        50,
    )
    assert (found["slow"].reached, found["slow"].median_s) == (3, 10.0)  # at the final evaluation
    assert (found["never"].reached, found["never"].runs) == (0, 3)
    assert math.isinf(found["never"].median_s)


def test_the_answer_ranks_every_seed_and_names_the_diverged():
    runs = _runs({"a": ["done", "diverged", "diverged"], "b": ["done"] * 3})
    runs.loc[runs["strategy"] == "b", "w1"] = [0.5, 0.52, 0.54]
    evals = _evals(runs, {"a": [0.3, 0.2], "b": [0.6, 0.5]})
    values = rs.seed_values(runs, evals, ["w1"])
    found = rs.comparisons(values, ["w1"], ["a", "b"])
    refs = rs.references(evals, FLOORS)
    quality = answers.time_to_quality(runs, evals, refs, "w1")
    lines = answers.answer(runs, values, found, refs, quality, "w1")
    assert lines[0].startswith("Final W1 (lower is better")
    assert "1. b 0.5200" in lines[0] and "2. a 0.2000" in lines[0]
    assert "2 of 3 diverged" in lines[0]
    assert "real data scores 0.03000" in lines[0]


def test_the_answer_words_ratios_with_three_digits_and_counts_modes_in_whole_numbers():
    runs = _runs({"a": ["done"] * 3, "b": ["done"] * 3})
    runs.loc[runs["strategy"] == "b", "w1"] = [0.6, 0.61, 0.62]  # a: 0.20, 0.21, 0.22
    runs["modes_covered"] = [1.0, 8.0, 7.0, 0.0, 1.0, 2.0]
    evals = _evals(runs, {"a": [0.3, 0.2], "b": [0.7, 0.6]})
    values = rs.seed_values(runs, evals, ["w1", "modes_covered"])
    found = rs.comparisons(values, ["w1"], ["a", "b"])
    lines = answers.answer(runs, values, found, rs.references(evals, FLOORS), [], "w1")
    significant = next(line for line in lines if line.startswith("Significant"))
    assert "a's W1 is 0.344x b's" in significant  # geometric means 0.2098 / 0.6099
    modes_line = next(line for line in lines if line.startswith("Modes covered"))
    assert "a 1, 8, 7 (one mode or none in 1 of 3 seeds); b 0, 1, 2 (one mode or none in 2" in (
        modes_line
    )
