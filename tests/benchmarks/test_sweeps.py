"""Sweeps: settings drawn from declared distributions, each an ordinary run of the suite."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from tiny_suites import run, table

from benchmarks.report import write_report
from benchmarks.suites import load_suite, suite_from_document

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


def test_a_sweep_runs_as_ordinary_runs_with_its_values_as_columns_and_a_report_section(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        'seeds = [0]\nstrategies = ["gan", "wgan-gp"]\n'
        "[eval]\nintermediate_samples = 100\nfinal_samples = 200\n"
        "[sweep]\nsamples = 4\nseed = 1\n"
        "[sweep.fields]\nwidth = { choice = [8, 16] }\n"
        "[sweep.hyperparameters.gan]\nlr = { log-uniform = [1e-5, 1e-2] }\n"
        "[sweep.hyperparameters.wgan-gp]\n"
        "n_critic = { int-uniform = [1, 2] }\nlr = { uniform = [1e-4, 2e-4] }\n"
        '[datasets.8gaussians]\narch = "mlp"\ngen_iters = 6\neval_every = 6\nbatch_size = 16\n'
    )
    assert run("--suite", path, "--out", tmp_path / "out") == 0
    write_report(tmp_path / "out" / "sweep", tmp_path / "rep")
    runs = table(tmp_path / "out" / "sweep", "runs")
    specs = {spec.run_id: spec for spec in load_suite(path).runs()}
    assert set(runs["run_id"]) == set(specs) and len(runs) == 8
    for row in runs.to_dict("records"):
        spec = specs[row["run_id"]]
        assert row["sweep_sample"] == spec.sample
        assert row["swept_width"] == row["width"] == spec.train.width
        if row["strategy"] == "gan":
            assert row["swept_lr"] == pytest.approx(dict(spec.swept)["lr"])
            assert json.loads(row["hparams"])["lr"] == pytest.approx(row["swept_lr"])
    report = (tmp_path / "rep" / "README.md").read_text()
    section = report[report.index("### Sweep") :]
    assert "- gan lr: log-uniform \\[1e-05, 0.01\\]" in section
    assert re.search(r"\| gan \| 4 \| 0 \| 0 \|", section)
    assert re.search(r"\| wgan-gp \| 4 \| 0 \| 0 \|", section)
    for name in ("sweep-8gaussians-values.png", "sweep-8gaussians-outcomes.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
