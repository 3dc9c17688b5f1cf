"""Sweeps: settings drawn from declared distributions, each an ordinary run of the suite."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.suites import suite_from_document

STRATEGIES = ["gan", "wgan", "wgan-gp"]


def sweep_suite(samples=40, seed=3, seeds=(0,)):
    return suite_from_document(
        "sweep",
        {
            "seeds": list(seeds),
            "strategies": STRATEGIES,
            "datasets": {"8gaussians": {"arch": "mlp", "gen_iters": 10, "width": 8}},
            "sweep": {
                "samples": samples,
                "seed": seed,
                "fields": {
                    "width": {"choice": [8, 16, 32]},
                    "depth": {"int-uniform": [1, 3]},
                },
                "hyperparameters": {
                    "gan": {"lr": {"log-uniform": [2e-5, 2e-3]}},
                    "wgan": {"clip_value": {"uniform": [0.005, 0.05]}},
                    "wgan-gp": {
                        "lr": {"log-uniform": [1e-5, 1e-3]},
                        "n_critic": {"int-uniform": [1, 10]},
                        "betas": {"choice": [[0.5, 0.9], [0.0, 0.9]]},
                    },
                },
            },
        },
    )


def drawn(suite):
    return [(spec.train.strategy, spec.sample, spec.swept) for spec in suite.runs()]


def test_the_same_sampler_seed_draws_the_same_settings_and_another_seed_others():
    assert drawn(sweep_suite()) == drawn(sweep_suite())
    assert drawn(sweep_suite()) != drawn(sweep_suite(seed=4))
    # A sample's values do not depend on how many samples the sweep has.
    assert drawn(sweep_suite(samples=5)) == [d for d in drawn(sweep_suite(samples=40)) if d[1] < 5]


def test_drawn_values_stay_within_the_declared_bounds_and_cover_them():
    runs = sweep_suite(samples=200).runs()
    by = {s: [dict(spec.swept) for spec in runs if spec.train.strategy == s] for s in STRATEGIES}
    lr = np.array([d["lr"] for d in by["gan"]])
    assert lr.min() >= 2e-5 and lr.max() <= 2e-3
    # log-uniform: about half the draws below the geometric middle, 2e-4
    assert 0.4 < (lr < 2e-4).mean() < 0.6
    clip = np.array([d["clip_value"] for d in by["wgan"]])
    assert clip.min() >= 0.005 and clip.max() <= 0.05 and 0.4 < (clip < 0.0275).mean() < 0.6
    n_critic = {d["n_critic"] for d in by["wgan-gp"]}
    assert n_critic == set(range(1, 11))  # both ends included
    assert {tuple(d["betas"]) for d in by["wgan-gp"]} == {(0.5, 0.9), (0.0, 0.9)}
    assert {d["depth"] for d in by["gan"]} == {1, 2, 3}
    assert {d["width"] for d in by["gan"]} == {8, 16, 32}


def test_drawn_values_reach_the_runs_and_shared_fields_are_the_same_for_every_strategy():
    runs = sweep_suite().runs()
    for spec in runs:
        values = dict(spec.swept)
        assert spec.train.width == values["width"] and spec.train.depth == values["depth"]
        resolved = spec.resolved["hparams"]
        for name in values.keys() - {"width", "depth"}:
            assert resolved[name] == pytest.approx(values[name])
    networks = {}
    for spec in runs:
        networks.setdefault(spec.sample, set()).add((spec.train.width, spec.train.depth))
    assert all(len(v) == 1 for v in networks.values())


def test_each_sample_and_seed_is_a_run_of_its_own_and_equal_draws_are_one_run():
    runs = sweep_suite(samples=6, seeds=(0, 1)).runs()
    assert len({spec.run_id for spec in runs}) == len(runs) == 3 * 6 * 2
    only_choices = suite_from_document(
        "sweep",
        {
            "strategies": ["gan"],
            "datasets": {"8gaussians": {"arch": "mlp", "gen_iters": 10}},
            "sweep": {"samples": 30, "seed": 0, "fields": {"width": {"choice": [8, 16]}}},
        },
    )
    assert sorted(spec.train.width for spec in only_choices.runs()) == [8, 16]
