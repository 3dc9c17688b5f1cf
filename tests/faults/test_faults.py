"""Fault injection: the runner killed with SIGKILL at seeded random points across training,
evaluation and the writing of every file (tables, checkpoints, markers, the report), then run
again, ends with the tables of an uninterrupted run; two runners at once train each run once.

Every strategy takes part (gan, wgan, wgan-gp on a toy dataset). The kill points are those an
uninterrupted run reaches (tests/faults/kill_at.py lists them): one of each kind, plus more
drawn at random, all by a seeded generator.
"""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tiny_suites import VARIES_BY_INVOCATION, run, table, tiny_suite
from tolerances import assert_close_columns, suite_tolerance

from benchmarks import report
from gans.feature_extractor_classifier import CACHE_DIR_ENV

KILL_AT = Path(__file__).parent / "kill_at.py"
SEED = 18
EXTRA_POINTS = 4  # kill points drawn at random beyond one of each kind
TABLES = ("runs", "curves", "evals", "references")
STRATEGIES = ("gan", "wgan", "wgan-gp")


def runner(
    out: Path, suite: Path, kill_at: int, log: Path, stack: str = "1"
) -> subprocess.CompletedProcess:
    """kill_at.py on the suite, with a cache of its own: every such run reaches the same kill
    points in the same order (a cached real-data floor would skip the writing of its file)."""
    args = ["--suite", suite, "--out", out, "--workers", "1", "--reports", out / "report"]
    args += ["--stack", stack]
    cache = out.parent / f"{out.name}-cache"
    return subprocess.run(
        [sys.executable, KILL_AT, str(kill_at), log, "--", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, CACHE_DIR_ENV: str(cache), "TORCH_HOME": str(cache / "torch")},
    )


def tables(suite_dir: Path) -> dict[str, pd.DataFrame]:
    return {
        name: table(suite_dir, name).drop(columns=list(VARIES_BY_INVOCATION), errors="ignore")
        for name in TABLES
    }


def assert_same_tables(suite_dir: Path, expected: dict[str, pd.DataFrame]) -> None:
    for name, frame in tables(suite_dir).items():
        pd.testing.assert_frame_equal(frame, expected[name], obj=name)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The suite run once without a kill: its tables, and every kill point it reached."""
    root = tmp_path_factory.mktemp("faults")
    suite = tiny_suite(root / "suite", strategies=STRATEGIES, seeds=(0,))
    log = root / "points.log"
    done = runner(root / "out", suite, -1, log)
    assert done.returncode == 0, done.stderr
    points = [line.split(" ", 1) for line in log.read_text().splitlines()]
    return suite, tables(root / "out" / "tiny"), [(int(i), label) for i, label in points]


def kill_points(points: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """One point of each kind, then EXTRA_POINTS more, drawn with a seeded generator."""
    rng = random.Random(SEED)
    by_label: dict[str, list[int]] = {}
    for index, label in points:
        by_label.setdefault(label, []).append(index)
    chosen = {rng.choice(indices) for indices in by_label.values()}
    rest = sorted({index for index, _ in points} - chosen)
    chosen |= set(rng.sample(rest, min(EXTRA_POINTS, len(rest))))
    labels = dict(points)
    return [(index, labels[index]) for index in sorted(chosen)]


def test_every_kind_of_kill_point_is_reached(uninterrupted):
    _, _, points = uninterrupted
    kinds = {label for _, label in points}
    for kind in (
        "training",
        "evaluation",
        "real-data floor",
        *(f"mid-write run {name}" for name in ("state.pt", "done.json", "curves.parquet")),
        *(f"mid-write suite {name}" for name in ("runs.parquet", "references.parquet")),
        "mid-write report index.html",
        "mid-write report README.md",
    ):
        assert kind in kinds, sorted(kinds)


def test_killed_at_any_point_a_rerun_ends_with_the_uninterrupted_tables(uninterrupted, tmp_path):
    suite, expected, points = uninterrupted
    chosen = kill_points(points)
    assert len(chosen) >= len({label for _, label in points})
    for index, label in chosen:
        out = tmp_path / f"kill-{index}"
        log = tmp_path / f"kill-{index}.log"
        killed = runner(out, suite, index, log)
        assert killed.returncode == -9, (index, label, killed.stderr[-2000:])
        assert log.read_text().splitlines()[-1] == f"{index} {label}"  # killed where intended
        assert run("--suite", suite, "--out", out) == 0, (index, label)  # in this process
        assert_same_tables(out / "tiny", expected)
        if label.startswith("mid-write report"):
            assert report.main([str(out / "tiny"), "--out", str(out / "report")]) == 0
            readme = (out / "report" / "README.md").read_text()
            assert all(strategy in readme for strategy in STRATEGIES)
            assert (out / "report" / "index.html").read_text().rstrip().endswith("</html>")
        assert not list(out.rglob("*.tmp")), (index, label)
        shutil.rmtree(out)


def test_two_runners_at_once_train_each_run_once(uninterrupted, tmp_path):
    suite, expected, _ = uninterrupted
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchmarks.run", "--suite", str(suite), "--out", str(out)]
    command += ["--workers", "1", "--no-report"]
    both = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in both:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    assert_same_tables(out / "tiny", expected)
    for run_dir in (out / "tiny").glob("*/run.log"):
        log = run_dir.read_text()
        assert log.count("started on") == 1 and log.count("done after") == 1, log


def assert_close_tables(suite_dir: Path, expected: dict[str, pd.DataFrame], rtol: float) -> None:
    """As assert_same_tables, numbers within ``rtol``: a member resumed behind its group trains
    alone until it catches up, which rounds differently (tests/tolerances.py)."""
    for name, frame in tables(suite_dir).items():
        # How many runs trained together is a record of the invocation that finished each run.
        frame, wanted = (f.drop(columns="stack", errors="ignore") for f in (frame, expected[name]))
        numbers = wanted.select_dtypes("number").columns
        pd.testing.assert_frame_equal(frame.drop(columns=numbers), wanted.drop(columns=numbers))
        assert_close_columns(frame[numbers], wanted[numbers], rtol)


def test_a_stacked_group_killed_at_any_point_ends_with_the_uninterrupted_tables(tmp_path):
    suite = tiny_suite(
        tmp_path / "suite", strategies=("wgan-gp",), seeds=(0, 1), extra='precision = "fp64"\n'
    )
    log = tmp_path / "points.log"
    assert runner(tmp_path / "whole", suite, -1, log, stack="2").returncode == 0
    expected = tables(tmp_path / "whole" / "tiny")
    rtol = suite_tolerance(suite, tmp_path / "whole" / "tiny")
    assert set(expected["runs"]["stack"]) == {2}
    points = [line.split(" ", 1) for line in log.read_text().splitlines()]
    rng = random.Random(SEED)
    by_label: dict[str, list[int]] = {}
    for index, label in points:
        by_label.setdefault(label, []).append(int(index))
    # One point of each kind where a run's state changes: training and its files.
    kinds = [k for k in by_label if k == "training" or k.startswith("mid-write run")]
    for index in sorted(rng.choice(by_label[kind]) for kind in kinds):
        out = tmp_path / f"kill-{index}"
        killed = runner(out, suite, index, tmp_path / f"kill-{index}.log", stack="2")
        assert killed.returncode == -9, (index, killed.stderr[-2000:])
        assert run("--suite", suite, "--out", out, "--stack", "2") == 0, index
        assert_close_tables(out / "tiny", expected, rtol)
        shutil.rmtree(out)
