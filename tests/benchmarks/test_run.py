"""The suite runner end to end: `benchmarks.run.main` on tiny suites, checked through the tables and
the run directories it leaves under --out."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_suites import BOOM_PLUGIN, run, table, tiny_suite
from torchvision.datasets import MNIST

import gans
from benchmarks.execute import reference_rows, run_row
from benchmarks.executors import cpu_cores
from benchmarks.run import _workers, main
from benchmarks.store import CONFIG_COLUMNS, DONE_MARKER, REAL_DATA, REFERENCE_COLUMNS
from benchmarks.suites import load_suite
from gans.feature_extractor_classifier import classifier_extractor
from gans.metrics_image import INCEPTION
from gans.storage import save_atomically
from gans.train_classifier import main as train_classifier

N_CRITIC = {"gan": 1, "wgan-gp": 5}


def run_dirs(suite_dir: Path) -> dict[str, int]:
    """Run id -> done.json mtime (ns) of every finished run directory."""
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted(suite_dir.glob(f"*/{DONE_MARKER}"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny suite run once, uninterrupted; tests work on copies (see ``copy_of``)."""
    root = tmp_path_factory.mktemp("finished")
    suite = tiny_suite(root / "suite")
    assert run("--suite", suite, "--out", root / "out") == 0
    return suite, root / "out"


def copy_of(finished, tmp_path) -> tuple[Path, Path]:
    """A copy of the finished results (mtimes kept) and of the suite file beside it, which a test
    may edit."""
    suite, out = finished
    shutil.copytree(out, tmp_path / "out")
    (tmp_path / "suite").mkdir()
    return Path(shutil.copy(suite, tmp_path / "suite")), tmp_path / "out"


def test_a_tiny_suite_runs_and_leaves_long_form_tables(finished):
    suite, out = finished
    suite_dir = out / "tiny"
    specs = load_suite(str(suite)).runs()
    runs = table(suite_dir, "runs")
    assert sorted(zip(runs.strategy, runs.dataset, runs.seed)) == sorted(
        (s, "25gaussians", seed) for s in ("gan", "wgan-gp") for seed in (0, 1)
    )
    assert list(runs.run_id) == [spec.run_id for spec in specs]
    assert set(runs.status) == {"done"} and set(runs.message) == {""}
    assert list(runs.gen_iters) == [20] * 4
    assert list(runs.critic_steps) == [20 * N_CRITIC[s] for s in runs.strategy]
    assert runs.diverged_at.isna().all()
    for spec, row in zip(specs, runs.to_dict("records")):
        assert {k: row[k] for k in run_row(spec)} == run_row(spec)
    assert set(run_dirs(suite_dir)) == set(runs.run_id)

    curves = table(suite_dir, "curves")
    assert curves.groupby("run_id").gen_iter.apply(list).to_dict() == {
        run_id: list(range(1, 21)) for run_id in runs.run_id
    }
    config = runs[list(CONFIG_COLUMNS)]
    assert curves[list(CONFIG_COLUMNS)].notna().all().all()
    pd.testing.assert_frame_equal(
        curves[list(CONFIG_COLUMNS)].drop_duplicates().reset_index(drop=True), config
    )
    critic_steps = curves.groupby("run_id").critic_step.max()
    assert critic_steps.to_dict() == dict(zip(runs.run_id, runs.critic_steps))

    evals = table(suite_dir, "evals")
    pd.testing.assert_frame_equal(
        evals[list(CONFIG_COLUMNS)].drop_duplicates().reset_index(drop=True), config
    )
    for run_id in runs.run_id:
        mine = evals[evals.run_id == run_id]
        assert sorted(set(zip(mine.stage, mine.gen_iter))) == [
            ("final", 20),
            ("initial", 0),
            ("intermediate", 0),
            ("intermediate", 10),
        ]
        w1 = mine[mine.metric == "w1"].set_index(["stage", "gen_iter"])
        assert w1.n_fake.to_dict() == {
            ("intermediate", 0): 100,
            ("initial", 0): 200,
            ("intermediate", 10): 100,
            ("final", 20): 200,
        }
        assert w1.value.between(0, 10).all()
        final = w1.loc[("final", 20), "value"]
        assert runs.set_index("run_id").loc[run_id, "w1"] == final
    assert set(evals.metric) >= {"w1", "modes_covered", "high_quality_fraction"}

    csv = pd.read_csv(suite_dir / "runs.csv")
    assert list(csv.run_id) == list(runs.run_id) and list(csv.status) == list(runs.status)


def test_every_run_evaluates_its_untrained_generator_with_both_plans(finished):
    suite_dir = finished[1] / "tiny"
    evals, runs = table(suite_dir, "evals"), table(suite_dir, "runs").set_index("run_id")
    for run_id, mine in evals.groupby("run_id"):
        at = {
            stage: rows.set_index("metric") for stage, rows in mine.groupby(["stage", "gen_iter"])
        }
        # Iteration 0 is evaluated as every later point of its plan: the same metrics and counts.
        for untrained, trained in [
            (("intermediate", 0), ("intermediate", 10)),
            (("initial", 0), ("final", 20)),
        ]:
            assert list(at[untrained].index) == list(at[trained].index)
            columns = ["n_fake", "n_real", "feature_extractor", "eval_seed"]
            pd.testing.assert_frame_equal(at[untrained][columns], at[trained][columns])
        assert (at[("initial", 0)].elapsed_s == 0).all()
        # An untrained MLP puts its points near the origin, far from the 25 modes (measured
        # W1 1.36-1.39); 20 iterations barely move it, so only the stage tells them apart.
        untrained_w1 = at[("initial", 0)].loc["w1", "value"]
        assert 1.2 <= untrained_w1 <= 1.6
        assert at[("initial", 0)].loc["modes_covered", "value"] == 0
        assert runs.loc[run_id, "w1"] == at[("final", 20)].loc["w1", "value"] != untrained_w1


def test_evaluating_the_untrained_generator_leaves_training_unchanged(finished):
    """Each run's curves equal those of a trainer that is never evaluated: evaluation at iteration
    0 (and later) draws from streams of its own."""
    suite, out = finished
    curves = table(out / "tiny", "curves")
    for spec in load_suite(str(suite)).runs():
        trainer = gans.Trainer(spec.train, progress=False)
        assert trainer.train(until=20) == gans.DONE
        unevaluated = pd.DataFrame(trainer.curves).drop(columns="elapsed_s")
        mine = curves[curves.run_id == spec.run_id][unevaluated.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, unevaluated, check_exact=True)


def test_the_real_data_floor_is_scored_like_the_runs(finished):
    suite_dir = finished[1] / "tiny"
    refs = table(suite_dir, "references")
    assert tuple(refs.columns) == REFERENCE_COLUMNS
    assert set(refs.dataset) == {"25gaussians"} and set(refs.reference) == {REAL_DATA}
    # The first run's seed (0) seeds the floor; the counts are those of the runs' evaluations.
    assert set(refs.eval_seed) == {0} and refs.unavailable.isna().all()
    evals = table(suite_dir, "evals")
    for stage, n_fake in [("intermediate", 100), ("final", 200)]:
        floor = refs[refs.stage == stage].set_index("metric")
        assert sorted(floor.index) == sorted(evals[evals.stage == stage].metric.unique())
        assert set(floor.n_fake) == {n_fake} and floor.loc["w1", "n_real"] == n_fake
        direct = gans.evaluate_real(gans.load_dataset("25gaussians"), n_fake, eval_seed=0)
        assert floor.value.to_dict() == {row.metric: row.value for row in direct}
        assert floor.loc["modes_covered", "value"] >= 23
    # Train against test points of the same mixture: W1 of sampling noise alone, measured 0.39
    # at 100 points and 0.17 at 200, against 1.35-1.39 for the untrained generators.
    w1 = refs[refs.metric == "w1"].set_index("stage").value
    assert 0.25 <= w1["intermediate"] <= 0.55 and 0.1 <= w1["final"] <= 0.3


DIGITS_SUITE = """
seeds = [0]
strategies = ["gan"]

[eval]
intermediate_samples = 100
final_samples = {final}
extractors = ["classifier", "inception-v3-compat"]

[datasets."mnist-5k:7"]
arch = "dcgan28"
width = 8
batch_size = 16
gen_iters = 2
eval_every = 1
"""


def test_a_class_subset_floor_uses_the_runs_classifier_and_needs_no_inception(tmp_path, capsys):
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS_SUITE.format(final=300))
    missing = tmp_path / "missing.pt"
    assert run("--suite", path, "--out", tmp_path / "out", "--inception-weights", missing) == 0
    assert "real-data floor for mnist-5k:7: intermediate (100 samples) kid=" in (
        capsys.readouterr().out
    )
    refs = table(tmp_path / "out" / "digits", "references")
    evals = table(tmp_path / "out" / "digits", "evals")
    # The whole dataset's classifier, as the run's: one trained on sevens alone says nothing.
    full = gans.load_dataset("mnist-5k")
    classifier = classifier_extractor(full).name
    assert set(evals.feature_extractor) == set(refs.feature_extractor) == {classifier, INCEPTION}
    key = ["stage", "metric", "feature_extractor", "n_fake", "n_real", "real_split"]
    final = evals[evals.stage == "final"]
    assert sorted(map(tuple, refs[refs.stage == "final"][key].values)) == sorted(
        map(tuple, final[key].values)
    )
    offline = refs[refs.feature_extractor == INCEPTION]
    assert len(offline) > 0 and offline.value.isna().all()
    assert set(offline.unavailable) == {f"Inception weights not found at {missing}"}
    # 300 real sevens against the 100 held-out ones (measured FID 29.5-30.7) next to a generator
    # after two iterations (1243): the scale the floor gives.
    fid = {
        name: rows[(rows.metric == "fid") & (rows.feature_extractor == classifier)].value.item()
        for name, rows in [("floor", refs[refs.stage == "final"]), ("run", final)]
    }
    assert 15 <= fid["floor"] <= 80 and fid["run"] >= 5 * fid["floor"]


def test_a_retrained_classifier_measures_runs_and_floors_under_its_own_name(tmp_path, capsys):
    weights = tmp_path / "retrained.pt"
    assert train_classifier(["mnist-5k:n=100", "--out", str(weights)]) == 0  # 0.4 s, not 15
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS_SUITE.format(final=300).replace(', "inception-v3-compat"', ""))
    assert run("--suite", path, "--out", tmp_path / "out", "--classifier-weights", weights) == 0
    retrained = classifier_extractor(gans.load_dataset("mnist-5k"), weights=weights).name
    shipped = classifier_extractor(gans.load_dataset("mnist-5k")).name
    assert retrained.startswith("classifier-mnist-5k-n=100-") and retrained != shipped
    for name in ("evals", "references"):
        assert set(table(tmp_path / "out" / "digits", name).feature_extractor) == {retrained}
    capsys.readouterr()
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(weights.read_bytes()[:1000])
    assert run("--suite", path, "--out", tmp_path / "again", "--classifier-weights", damaged) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --classifier-weights: classifier weights {damaged}: ")
    assert err.count("\n") == 1 and not (tmp_path / "again").exists()


def test_a_floor_needing_more_train_rows_than_the_split_has_is_left_out(tmp_path):
    path = tmp_path / "digits.toml"
    path.write_text(DIGITS_SUITE.format(final=500))  # mnist-5k:7 has 400 train sevens
    spec = load_suite(str(path)).runs()[0]
    rows, skipped = reference_rows(spec, gans.load_dataset("mnist-5k:7"))
    assert skipped == ["final: 500 samples, the train split has 400"]
    assert {row["stage"] for row in rows} == {"intermediate"}
    assert sorted(row["metric"] for row in rows) == ["classifier_accuracy", "fid", "kid", "kid_std"]
    assert {row["n_fake"] for row in rows} == {100}


def test_rerunning_a_finished_suite_retrains_nothing(finished, tmp_path):
    suite, out = copy_of(finished, tmp_path)
    suite_dir = out / "tiny"
    before = run_dirs(suite_dir)
    checkpoints = {p: p.stat().st_mtime_ns for p in suite_dir.glob("*/state.pt")}
    tables = {name: table(suite_dir, name) for name in ("runs", "curves", "evals", "references")}
    assert run("--suite", suite, "--out", out) == 0
    assert run_dirs(suite_dir) == before and len(before) == 4
    assert {p: p.stat().st_mtime_ns for p in suite_dir.glob("*/state.pt")} == checkpoints
    assert len(checkpoints) == 4  # the final checkpoint of each run stays
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(table(suite_dir, name), frame)


def test_the_report_goes_where_reports_says(finished, tmp_path, monkeypatch):
    suite, out = copy_of(finished, tmp_path)
    monkeypatch.chdir(tmp_path)  # the default report directory would be ./reports/tiny
    args = ["--suite", str(suite), "--out", str(out), "--workers", "1", "--reports", "rep"]
    assert main(args) == 0
    assert "gan" in (tmp_path / "rep" / "README.md").read_text()
    assert (tmp_path / "rep" / "index.html").stat().st_size > 0
    assert not (tmp_path / "reports").exists()


def test_a_changed_config_is_a_new_run_and_fresh_redoes_the_selected_runs(finished, tmp_path):
    suite, out = copy_of(finished, tmp_path)
    suite_dir = out / "tiny"
    before = run_dirs(suite_dir)
    assert run("--suite", suite, "--out", out) == 0  # the copy takes over: nothing to train
    assert run_dirs(suite_dir) == before
    original = suite.read_text()
    suite.write_text(tiny_suite(tmp_path / "wider", width=16).read_text())  # the file edited
    only = ["--strategies", "gan", "--seeds", "0"]
    assert run("--suite", suite, "--out", out, *only) == 0
    after = run_dirs(suite_dir)
    (new,) = set(after) - set(before)
    assert after == {**before, new: after[new]}
    runs = table(suite_dir, "runs")
    assert list(runs.run_id) == [new] and list(runs.width) == [16]

    (redo,) = table(finished[1] / "tiny", "runs").query("strategy == 'gan' and seed == 0").run_id
    suite.write_text(original)
    assert run("--suite", suite, "--out", out, "--fresh", *only) == 0
    redone = run_dirs(suite_dir)
    assert redone[redo] != before[redo]
    assert {k: v for k, v in redone.items() if k != redo} == {
        k: v for k, v in after.items() if k != redo
    }
    # Training is deterministic: redoing it gives the same curves, only the clock differs.
    fresh = pd.read_parquet(suite_dir / redo / "curves.parquet").drop(columns="elapsed_s")
    original = pd.read_parquet(finished[1] / "tiny" / redo / "curves.parquet")
    pd.testing.assert_frame_equal(fresh, original.drop(columns="elapsed_s"))


def test_precision_option_trains_new_runs_in_bf16(finished, tmp_path):
    suite, out = copy_of(finished, tmp_path)
    before = run_dirs(out / "tiny")
    only = ["--strategies", "wgan-gp", "--seeds", "0"]
    assert run("--suite", suite, "--out", out, *only, "--precision", "bf16") == 0
    (new,) = set(run_dirs(out / "tiny")) - set(before)  # a changed config: a run of its own
    assert json.loads((out / "tiny" / new / "config.json").read_text())["train"]["precision"] == (
        "bf16"
    )
    assert list(table(out / "tiny", "runs").status) == ["done"]


def test_each_run_records_the_speedups_it_trained_with_and_no_speedups_changes_no_number(
    finished, tmp_path
):
    suite, fast_out = finished
    plain_out = tmp_path / "plain"
    assert run("--suite", suite, "--out", plain_out, "--no-speedups") == 0
    fast, plain = (table(out / "tiny", "runs").set_index("run_id") for out in (fast_out, plain_out))
    assert list(plain.index) == list(fast.index)  # the same runs: the numbers do not change
    assert set(fast["speedups"]) == {"none", "gated-activations"}  # gan, wgan-gp
    assert set(plain["speedups"]) == {"none"}
    pd.testing.assert_series_equal(plain["w1"], fast["w1"])
    gp = fast.index[fast["strategy"] == "wgan-gp"][0]
    for out, expected in ((fast_out, ["gated-activations"]), (plain_out, [])):
        assert json.loads((out / "tiny" / gp / "config.json").read_text())["speedups"] == expected


def test_an_unfinished_run_resumes_exactly_where_its_checkpoint_left_off(finished, tmp_path):
    suite = tiny_suite(tmp_path / "suite")
    spec = load_suite(str(suite)).runs()[0]
    assert (spec.train.strategy, spec.train.seed) == ("gan", 0)
    # What execute_group leaves after its first chunk when the process is killed.
    trainer = gans.Trainer(spec.train, progress=False)
    assert trainer.train(until=10) == gans.RUNNING
    state = {"trainer": trainer.state_dict(), "evals": [], "eval_s": 0.0}
    save_atomically(state, tmp_path / "out" / "tiny" / spec.run_id / "state.pt")

    assert (
        run("--suite", suite, "--out", tmp_path / "out", "--strategies", "gan", "--seeds", 0) == 0
    )
    run_dir = tmp_path / "out" / "tiny" / spec.run_id
    assert (run_dir / DONE_MARKER).exists()
    assert torch.load(run_dir / "state.pt", weights_only=True)["trainer"]["gen_iter"] == 20
    assert "resumed at generator iteration 10" in (run_dir / "run.log").read_text()
    resumed = pd.read_parquet(run_dir / "curves.parquet")
    uninterrupted = pd.read_parquet(finished[1] / "tiny" / spec.run_id / "curves.parquet")
    pd.testing.assert_frame_equal(
        resumed.drop(columns="elapsed_s"), uninterrupted.drop(columns="elapsed_s")
    )
    # The first ten rows are the checkpoint's, not a retraining.
    assert list(resumed.elapsed_s[:10]) == [row["elapsed_s"] for row in trainer.curves]
    evals = pd.read_parquet(run_dir / "evals.parquet")
    expected = pd.read_parquet(finished[1] / "tiny" / spec.run_id / "evals.parquet")
    expected = expected[expected.stage == "final"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        evals.drop(columns="elapsed_s"), expected.drop(columns="elapsed_s")
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        pytest.param(["--seeds", "1"], {("gan", 1), ("wgan-gp", 1)}, id="seeds"),
        pytest.param(
            ["--strategies", "wgan-gp"], {("wgan-gp", 0), ("wgan-gp", 1)}, id="strategies"
        ),
        pytest.param(
            ["--datasets", "25gaussians"],
            {(s, seed) for s in ("gan", "wgan-gp") for seed in (0, 1)},
            id="datasets",
        ),
        pytest.param(["--seeds", "1", "--strategies", "gan"], {("gan", 1)}, id="combined"),
    ],
)
def test_options_select_a_subset_of_the_suite(finished, tmp_path, option, expected):
    suite, _ = copy_of(finished, tmp_path)
    out = tmp_path / "subset"
    assert run("--suite", suite, "--out", out, *option) == 0
    runs = table(out / "tiny", "runs")
    assert set(zip(runs.strategy, runs.seed)) == expected and len(runs) == len(expected)
    assert len(run_dirs(out / "tiny")) == len(expected)


def test_tables_keep_finished_runs_of_earlier_subsets(finished, tmp_path):
    suite, _ = copy_of(finished, tmp_path)
    out = tmp_path / "subsets"
    assert run("--suite", suite, "--out", out, "--seeds", "0") == 0
    assert run("--suite", suite, "--out", out, "--seeds", "1") == 0
    runs = table(out / "tiny", "runs")
    assert sorted(zip(runs.strategy, runs.seed)) == [
        ("gan", 0),
        ("gan", 1),
        ("wgan-gp", 0),
        ("wgan-gp", 1),
    ]
    assert len(table(out / "tiny", "curves")) == 4 * 20


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(["--seeds", "2"], "--seeds: 2 not in the suite; it has 0, 1", id="seed"),
        pytest.param(
            ["--seeds", "one"], "--seeds must be comma-separated values, got 'one'", id="seed-text"
        ),
        pytest.param(
            ["--strategies", "wgan"],
            "--strategies: wgan not in the suite; it has gan, wgan-gp",
            id="strategy",
        ),
        pytest.param(
            ["--datasets", "mnist-5k"],
            "--datasets: mnist-5k not in the suite; it has 25gaussians",
            id="dataset",
        ),
    ],
)
def test_a_subset_the_suite_does_not_have_is_bad_input(tmp_path, capsys, option, message):
    suite = tiny_suite(tmp_path / "suite")
    assert run("--suite", suite, "--out", tmp_path / "out", *option) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()


BAD_SUITES = {
    "toml-syntax": (
        "seeds = [0, 1]\nstrategies = gan\n",
        "suite file {path} is not valid TOML: .*line 2",
    ),
    "unknown-key": (
        '[datasets.25gaussians]\narch = "mlp"\ncolour = "red"\n',
        r"suite file {path}, \[datasets.25gaussians\]: unknown key colour; accepted: arch, ",
    ),
    "gen-iters-0": (
        '[datasets.25gaussians]\narch = "mlp"\ngen_iters = 0\n',
        "suite file {path}: gen_iters must be an integer from 1 to 1,000,000,000, got 0",
    ),
    "negative-lr": (
        'strategies = ["gan"]\n[datasets.25gaussians]\narch = "mlp"\n'
        "[datasets.25gaussians.hyperparameters.gan]\nlr = -1\n",
        "suite file {path}: lr must be a number > 0, got -1",
    ),
    "unknown-strategy": (
        'strategies = ["gan", "lsgan"]\n[datasets.25gaussians]\narch = "mlp"\n',
        "suite file {path}: .*'lsgan'; registered: (.*, )?gan, (.*, )?wgan, wgan-gp",
    ),
    "unknown-dataset": (
        '[datasets.30gaussians]\narch = "mlp"\n',
        "suite file {path}: unknown dataset '30gaussians'; registered: .*25gaussians",
    ),
    "precision-fp16": (
        '[datasets.25gaussians]\narch = "mlp"\nprecision = "fp16"\n',
        "suite file {path}: precision must be one of fp32, bf16, fp64, got 'fp16'",
    ),
    "unknown-arch": (
        '[datasets.25gaussians]\narch = "transformer"\n',
        "suite file {path}: .*'transformer'.*mlp",
    ),
}


@pytest.mark.parametrize("source", BAD_SUITES.values(), ids=BAD_SUITES.keys())
def test_a_bad_suite_file_is_one_line_of_bad_input(tmp_path, capsys, source):
    text, pattern = source
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert run("--suite", path, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert re.match("error: " + pattern.replace("{path}", re.escape(str(path))), err), err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_bad_options_are_one_line_of_bad_input_and_write_nothing(tmp_path, capsys):
    suite = tiny_suite(tmp_path / "suite")
    out = tmp_path / "out"
    exits = tmp_path / "exits.py"  # a plugin that ends the process: an exit 0 that ran nothing
    exits.write_text("import sys\nsys.exit(0)\n")
    cases = {
        "unknown suite 'nosuch'; built-in: ": ["--suite", "nosuch"],
        "--device cuda: no CUDA device here; use --device cpu": ["--device", "cuda"],
        "--device must be auto, cpu, cuda or cuda:N, got 'tpu'": ["--device", "tpu"],
        "--workers must be auto or an integer >= 1, got '0'": ["--workers", "0"],
        "--workers must be auto or an integer >= 1, got 'many'": ["--workers", "many"],
        "plugin file": ["--plugin", tmp_path / "missing.py"],
        f"plugin {exits} called sys.exit(0) while importing": ["--plugin", exits],
        f"plugin {tmp_path} is a directory": ["--plugin", tmp_path],
    }
    if torch.cuda.is_available():
        del cases["--device cuda: no CUDA device here; use --device cpu"]
    for message, args in cases.items():
        assert run("--suite", suite, "--out", out, *args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
        if args[0] == "--suite":
            assert re.search(r"built-in: .*\bquick\b.*, or give the path of a .toml", err), err
        assert not out.exists()


def test_workers_are_never_more_than_the_runs_nor_the_cores(capsys):
    assert _workers("auto", "cpu", runs=100) == cpu_cores()
    assert _workers("auto", "cpu", runs=1) == 1
    assert _workers(str(cpu_cores()), "cpu", runs=1) == 1
    assert capsys.readouterr().err == ""
    assert _workers("1000", "cpu", runs=100) == cpu_cores()
    assert (
        capsys.readouterr().err == f"--workers 1000: capped at {cpu_cores()}, the CPU cores "
        "this process may use\n"
    )


def test_an_unwritable_out_is_bad_input(tmp_path, capsys):
    suite = tiny_suite(tmp_path / "suite")
    (tmp_path / "file").write_text("not a directory")
    assert run("--suite", suite, "--out", tmp_path / "file" / "results") == 2
    err = capsys.readouterr().err
    target = tmp_path / "file" / "results" / "tiny"
    assert err == f"error: --out: cannot write to {target}: Not a directory\n"
    assert (tmp_path / "file").read_text() == "not a directory"


def test_an_unwritable_reports_directory_is_bad_input_before_any_run(tmp_path, capsys):
    suite = tiny_suite(tmp_path / "suite")
    (tmp_path / "file").write_text("not a directory")
    target = tmp_path / "file" / "report"
    args = ["--suite", str(suite), "--out", str(tmp_path / "out"), "--reports", str(target)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: --reports: cannot write to {target}: Not a directory\n"
    assert not (tmp_path / "out").exists()  # nothing was started


def test_a_missing_image_dataset_says_how_to_get_it_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # no download, even online
    empty = tmp_path / "data"
    empty.mkdir()
    assert run("--suite", "mnist", "--out", tmp_path / "out", "--data-root", empty) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "MNIST/raw/train-images-idx3-ubyte, " in err and f"under data root {empty} " in err
    assert "put the files there, or point --data-root or GANS_DATA_ROOT at" in err
    assert err.endswith("; the 'quick' suite runs offline\n")
    assert not (tmp_path / "out").exists() and list(empty.rglob("*.gz")) == []


def test_bad_input_from_the_command_line_is_one_line_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--suite", "nosuch", "--out", tmp_path / "out"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert re.match(r"error: unknown suite 'nosuch'; built-in: .*\bquick\b", result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failing_run_does_not_stop_the_others_and_is_retried(tmp_path, capsys):
    plugin = tmp_path / "boom_plugin.py"
    plugin.write_text(BOOM_PLUGIN)
    suite = tiny_suite(tmp_path / "suite", strategies=("gan", "boom-loss"), seeds=(0,))
    out = tmp_path / "out"
    command = ["--suite", suite, "--out", out, "--plugin", plugin]
    assert run(*command) == 1
    assert "failed: 25gaussians boom-loss seed 0" in capsys.readouterr().err
    runs = table(out / "tiny", "runs").set_index("strategy")
    assert list(runs.status) == ["done", "failed"]
    assert runs.loc["gan", "message"] == "" and runs.loc["gan", "gen_iters"] == 20
    assert runs.loc["boom-loss", "message"].endswith("RuntimeError: boom")
    failed_dir = out / "tiny" / runs.loc["boom-loss", "run_id"]
    assert "Traceback" in (failed_dir / "error.log").read_text()
    assert not (failed_dir / DONE_MARKER).exists()
    assert list(table(out / "tiny", "curves").strategy.unique()) == ["gan"]

    done = run_dirs(out / "tiny")
    (failed_dir / "error.log").unlink()
    assert run(*command) == 1  # loading the same plugin again registers nothing new
    assert (failed_dir / "error.log").exists()  # retried, not skipped
    assert run_dirs(out / "tiny") == done
    assert list(table(out / "tiny", "runs").status) == ["done", "failed"]


def test_a_diverged_run_is_a_finished_run(tmp_path):
    extra = """
    [datasets.25gaussians.hyperparameters.gan]
    lr = 1e20
    """
    suite = tiny_suite(tmp_path / "suite", strategies=("gan",), seeds=(0,), extra=extra)
    out = tmp_path / "out"
    assert run("--suite", suite, "--out", out) == 0
    (row,) = table(out / "tiny", "runs").to_dict("records")
    assert row["status"] == "diverged"
    assert 1 <= row["diverged_at"] <= 10
    # Seen at the next copy of the curves to the host: the end of the chunk trained before the
    # evaluation at 10 (eval_every), where training stopped.
    assert row["gen_iters"] == 10
    assert row["message"] == (
        f"a loss was non-finite or beyond ±1e+06 at generator iteration {row['diverged_at']};"
        " training stopped at 10"
    )
    curves = table(out / "tiny", "curves")
    assert curves.gen_iter.max() == row["diverged_at"]
    assert (out / "tiny" / row["run_id"] / DONE_MARKER).exists()
    assert run("--suite", suite, "--out", out) == 0  # finished: not retried
    assert table(out / "tiny", "runs").to_dict("records") == [row]


def test_tensorboard_gets_losses_and_metrics(finished, tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    suite, _ = copy_of(finished, tmp_path)
    board = tmp_path / "tb"
    options = ("--seeds", "0", "--strategies", "wgan-gp", "--tensorboard", board)
    assert run("--suite", suite, "--out", tmp_path / "res", *options) == 0
    (run_dir,) = (board / "tiny").iterdir()
    events = event_accumulator.EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/critic", "loss/generator", "critic/w_estimate", "critic/grad_norm"} <= tags
    assert "metrics/w1" in tags
    assert [e.step for e in events.Scalars("loss/critic")] == list(range(1, 21))
    curves = table(tmp_path / "res" / "tiny", "curves")
    logged = [e.value for e in events.Scalars("critic/w_estimate")]
    assert logged == pytest.approx(curves["w_estimate"].tolist(), rel=1e-6)


def test_a_wall_clock_budget_stops_training_at_the_first_iteration_past_it(tmp_path):
    suite = tiny_suite(tmp_path, strategies=("gan",), seeds=(0,), budget="seconds = 0.5")
    assert run("--suite", suite, "--out", tmp_path / "out") == 0
    (row,) = table(tmp_path / "out" / "tiny", "runs").to_dict("records")
    assert row["status"] == "done" and 10 <= row["gen_iters"] < 1_000_000
    assert row["train_s"] >= 0.5 and row["budget_s"] == 0.5
    curves = table(tmp_path / "out" / "tiny", "curves").set_index("gen_iter")
    assert curves.loc[row["gen_iters"], "elapsed_s"] == pytest.approx(row["train_s"])
    assert curves.loc[row["gen_iters"] - 1, "elapsed_s"] < 0.5  # the iteration before: in time


def test_lr_decay_with_a_wall_clock_budget_is_bad_input(tmp_path, capsys):
    suite = tiny_suite(tmp_path, seeds=(0,), budget="seconds = 5\nlr_decay = true")
    assert run("--suite", suite, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lr_decay needs a budget in gen_iters" in err
    assert not (tmp_path / "out").exists()
