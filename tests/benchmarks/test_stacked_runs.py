"""Suites run with --stack: each run of a stacked group keeps its directory, checkpoint,
evaluations and row, and its numbers equal those of the run trained alone up to float rounding."""

import json

import pandas as pd
import pytest
from tiny_suites import BOOM_PLUGIN, CALL_ONLY_PLUGIN, run, table, tiny_suite
from tolerances import assert_close_columns, suite_tolerance

import gans
from benchmarks.executors import group_runs
from benchmarks.store import DONE_MARKER
from benchmarks.suites import load_suite

STRATEGIES = ("gan", "wgan", "wgan-gp")


@pytest.fixture(scope="module")
def stacked_and_alone(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacked")
    # In float64, where stacked and alone agree up to a derived bound (tests/tolerances.py).
    suite = tiny_suite(
        root / "suite", strategies=STRATEGIES, seeds=(0, 1, 2), extra='precision = "fp64"\n'
    )
    assert run("--suite", suite, "--out", root / "stacked", "--stack", "3") == 0
    assert run("--suite", suite, "--out", root / "alone", "--stack", "1") == 0
    alone = root / "alone" / "tiny"
    return suite, root / "stacked" / "tiny", alone, suite_tolerance(suite, alone)


def test_stacked_runs_fill_the_tables_as_runs_trained_alone(stacked_and_alone):
    _, stacked, alone, rtol = stacked_and_alone
    runs = {
        name: table(d, "runs").set_index("run_id") for name, d in (("s", stacked), ("a", alone))
    }
    assert list(runs["s"].index) == list(runs["a"].index)  # the same runs, the same ids
    assert (runs["s"].status == "done").all() and (runs["a"].status == "done").all()
    assert set(runs["s"]["stack"]) == {3} and set(runs["a"]["stack"]) == {1}
    metrics = ["w1", "modes_covered", "high_quality_fraction"]
    assert_close_columns(runs["s"][metrics], runs["a"][metrics], rtol)
    curves = [
        table(d, "curves").drop(columns="elapsed_s").select_dtypes("number")
        for d in (stacked, alone)
    ]
    assert_close_columns(*curves, rtol)
    evals = [table(d, "evals") for d in (stacked, alone)]
    for metric in evals[1]["metric"].unique():  # each metric on its own scale
        assert_close_columns(*(e[e.metric == metric][["gen_iter", "value"]] for e in evals), rtol)
    for run_id in runs["s"].index:
        assert json.loads((stacked / run_id / "config.json").read_text())["stack"] == 3
        log = (stacked / run_id / "run.log").read_text()
        assert "stacked with 2 other runs" in log


def test_a_group_with_some_runs_done_trains_the_rest_together(stacked_and_alone, tmp_path):
    suite, _, alone, rtol = stacked_and_alone
    out = tmp_path / "out"
    select = ("--suite", suite, "--out", out, "--strategies", "wgan-gp")
    assert run(*select, "--seeds", "0", "--stack", "1") == 0
    first = table(out / "tiny", "runs")
    assert run(*select, "--stack", "8") == 0
    runs = table(out / "tiny", "runs").set_index("seed")
    assert runs.loc[0, "stack"] == 1 and runs.loc[0, "w1"] == first.w1.iloc[0]  # not retrained
    assert list(runs.loc[[1, 2], "stack"]) == [2, 2]
    expected = table(alone, "runs").set_index("run_id").loc[runs.run_id]
    assert_close_columns(
        runs[["w1"]].reset_index(drop=True), expected[["w1"]].reset_index(drop=True), rtol
    )


def test_runs_resumed_at_different_points_catch_up_then_train_together(stacked_and_alone, tmp_path):
    suite, _, alone, rtol = stacked_and_alone
    specs = [s for s in load_suite(str(suite)).runs() if s.train.strategy == "wgan"][:2]
    # The first run was interrupted after its first chunk (iteration 10), the second never began.
    trainer = gans.Trainer(specs[0].train, progress=False)
    trainer.train(until=10)
    state = {"trainer": trainer.state_dict(), "evals": [], "eval_s": 0.0}
    out = tmp_path / "out"
    gans.save_atomically(state, out / "tiny" / specs[0].run_id / "state.pt")
    args = ("--suite", suite, "--out", out, "--strategies", "wgan", "--seeds", "0,1")
    assert run(*args, "--stack", "2") == 0
    for spec in specs:
        run_dir = out / "tiny" / spec.run_id
        assert (run_dir / DONE_MARKER).exists()
        curves, expected = (
            pd.read_parquet(d / "curves.parquet").drop(columns="elapsed_s").select_dtypes("number")
            for d in (run_dir, alone / spec.run_id)
        )
        assert_close_columns(curves, expected, rtol)
    log = (out / "tiny" / specs[0].run_id / "run.log").read_text()
    assert "resumed at generator iteration 10" in log


def test_a_strategy_that_cannot_stack_trains_its_runs_alone_with_a_note(tmp_path, capsys):
    plugin = tmp_path / "call_only.py"
    plugin.write_text(CALL_ONLY_PLUGIN)
    suite = tiny_suite(tmp_path / "suite", strategies=("call-only",))
    out = tmp_path / "out"
    assert run("--suite", suite, "--out", out, "--plugin", plugin, "--stack", "2") == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "train separately" in line]
    assert notes == [
        "call-only on 25gaussians: runs train separately: its penalty 'call-only' overrides "
        "__call__; written as draw and apply (gans.Penalty) it would stack"
    ]
    runs = table(out / "tiny", "runs")
    assert list(runs.status) == ["done", "done"] and list(runs["stack"]) == [1, 1]


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_stack_is_one_line_before_any_run(tmp_path, capsys, value):
    suite = tiny_suite(tmp_path / "suite")
    assert run("--suite", suite, "--out", tmp_path / "out", "--stack", value) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --stack must be auto or an integer >= 1, got {value!r}"
    assert not (tmp_path / "out").exists()


def _groups(tmp_path, stack, device="cpu", **suite):
    specs = load_suite(str(tiny_suite(tmp_path, strategies=("gan",), **suite))).runs()
    return [[spec.train.seed for spec in group] for group in group_runs(specs, stack, device)]


@pytest.mark.parametrize(
    ("stack", "device", "suite", "expected"),
    [
        # auto on the CPU: groups of 8 of the mlp up to width 64, the rest alone
        (None, "cpu", {"width": 64}, [list(range(8)), [8], [9]]),
        (None, "cpu", {"width": 512}, [[seed] for seed in range(10)]),
        # auto on a GPU: up to 16 together (the group is built before any CUDA call)
        (None, "cuda", {"width": 512}, [list(range(10))]),
        (3, "cpu", {"width": 512}, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]),
        (1, "cpu", {"width": 64}, [[seed] for seed in range(10)]),
    ],
    ids=["auto-cpu-mlp-64", "auto-cpu-mlp-512", "auto-gpu", "stack-3", "stack-1"],
)
def test_runs_are_grouped_by_configuration_up_to_the_stack(
    tmp_path, stack, device, suite, expected
):
    assert _groups(tmp_path, stack, device, seeds=range(10), **suite) == expected


def test_only_runs_that_differ_in_seed_alone_are_grouped(tmp_path):
    specs = load_suite(str(tiny_suite(tmp_path, seeds=(0, 1)))).runs()  # gan and wgan-gp
    groups = group_runs(specs, 4, "cpu")
    assert [[(s.train.strategy, s.train.seed) for s in group] for group in groups] == [
        [("gan", 0), ("gan", 1)],
        [("wgan-gp", 0), ("wgan-gp", 1)],
    ]


def test_a_stacked_group_that_raises_fails_its_runs_and_no_other(tmp_path):
    plugin = tmp_path / "boom.py"
    plugin.write_text(BOOM_PLUGIN.replace('"boom-loss"', '"boom-stacked"'))
    suite = tiny_suite(tmp_path / "suite", strategies=("gan", "boom-stacked"), seeds=(0, 1))
    out = tmp_path / "out"
    assert run("--suite", suite, "--out", out, "--plugin", plugin, "--stack", "2") == 1
    runs = table(out / "tiny", "runs").set_index(["strategy", "seed"])
    assert list(runs.loc["gan", "status"]) == ["done", "done"]
    assert list(runs.loc["boom-stacked", "status"]) == ["failed", "failed"]
    assert set(runs.loc["boom-stacked", "message"]) == {"RuntimeError: boom"}
    for run_id in runs.loc["boom-stacked", "run_id"]:
        assert "RuntimeError: boom" in (out / "tiny" / run_id / "error.log").read_text()
