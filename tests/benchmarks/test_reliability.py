"""Bad input, damaged files and concurrent use, one defect per test: each says in one line what
was wrong (exit 2 for bad input), or recovers; none ends in a traceback."""

import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading

import filelock
import pandas as pd
import pytest
import torch
from tiny_suites import BOOM_PLUGIN, VARIES_BY_INVOCATION, run, table, tiny_suite

import gans
from benchmarks import report
from benchmarks.run import _suite_rows, main
from benchmarks.store import DONE_MARKER, read_done
from benchmarks.suites import load_suite


def tables_without_timing(suite_dir):
    return {
        name: table(suite_dir, name).drop(columns=list(VARIES_BY_INVOCATION), errors="ignore")
        for name in ("runs", "curves", "evals", "references")
    }


def assert_same_tables(suite_dir, expected):
    for name, frame in tables_without_timing(suite_dir).items():
        pd.testing.assert_frame_equal(frame, expected[name], obj=name)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny two-strategy suite run once, and its tables (timing columns dropped)."""
    root = tmp_path_factory.mktemp("finished")
    suite = tiny_suite(root / "suite", seeds=(0,))
    assert run("--suite", suite, "--out", root / "out") == 0
    return suite, root / "out" / "tiny", tables_without_timing(root / "out" / "tiny")


def run_dir_of(suite_dir, strategy):
    runs = table(suite_dir, "runs").set_index("strategy")
    return suite_dir / runs.loc[strategy, "run_id"]


# 1: the report of a suite whose runs all failed, and of a half-written results directory


def test_the_report_of_a_suite_without_a_single_evaluation_is_written(tmp_path):
    plugin = tmp_path / "boom_report_plugin.py"  # a name of its own: registries are global
    plugin.write_text(BOOM_PLUGIN.replace('"boom-loss"', '"boom-report"'))
    suite = tiny_suite(tmp_path / "suite", strategies=("boom-report",), seeds=(0,))
    out, reports = tmp_path / "out", tmp_path / "report"
    args = ["--suite", suite, "--out", out, "--plugin", plugin, "--workers", "1"]
    assert main([str(a) for a in args + ["--reports", reports]]) == 1  # the run failed: 1
    assert table(out / "tiny", "evals").empty
    readme = (reports / "README.md").read_text()
    assert "boom-report" in readme and "RuntimeError: boom" in readme  # listed with its error


@pytest.mark.parametrize("missing", ["curves", "evals"])
def test_a_half_written_results_directory_is_one_line(finished, tmp_path, capsys, missing):
    _, suite_dir, _ = finished
    copy = tmp_path / "tiny"
    for name in ("runs", "curves", "evals"):
        if name != missing:
            copy.mkdir(exist_ok=True)
            (copy / f"{name}.parquet").write_bytes((suite_dir / f"{name}.parquet").read_bytes())
    assert report.main([str(copy), "--out", str(tmp_path / "report")]) == 2
    err = one_error_line(capsys)
    assert f"has no {missing}.parquet; rerun `python -m benchmarks.run --suite tiny`" in err
    assert not (tmp_path / "report").exists()


# 4: the report given damaged tables or an --out it cannot write


@pytest.mark.parametrize(
    "damage",
    [
        ("runs", b""),
        ("runs", b"PAR1 this is not a parquet file"),
        ("runs", None),  # truncated to half
        ("curves", b"\x00" * 100),
        ("evals", None),
    ],
)
def test_the_report_refuses_damaged_tables_in_one_line(finished, tmp_path, capsys, damage):
    _, suite_dir, _ = finished
    name, content = damage
    copy = tmp_path / "tiny"
    copy.mkdir()
    for table_name in ("runs", "curves", "evals", "references"):
        data = (suite_dir / f"{table_name}.parquet").read_bytes()
        if table_name == name:
            data = data[: len(data) // 2] if content is None else content
        (copy / f"{table_name}.parquet").write_bytes(data)
    assert report.main([str(copy), "--out", str(tmp_path / "report")]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: cannot read {copy / name}.parquet: ")
    assert not (tmp_path / "report").exists()


def edit(suite_dir, name, change):
    path = suite_dir / f"{name}.parquet"
    change(pd.read_parquet(path)).to_parquet(path, index=False)


def as_text(column):
    return lambda frame: frame.assign(**{column: frame[column].astype(str)})


HAND_EDITED = {
    "a strategy without curves": (
        lambda d: edit(d, "curves", lambda f: f[f["strategy"] != "gan"]),
        "has no rows in curves.parquet: the tables do not match the runs",
    ),
    "no evaluations at all": (
        lambda d: edit(d, "evals", lambda f: f.iloc[:0]),
        "has no rows in evals.parquet: the tables do not match the runs",
    ),
    "a metric column of strings": (
        lambda d: edit(d, "runs", as_text("w1")),
        "runs.parquet's w1 column holds str, not numbers",
    ),
    "evaluation values of strings": (
        lambda d: edit(d, "evals", as_text("value")),
        "evals.parquet's value column holds str, not numbers",
    ),
    "an empty runs table": (
        lambda d: edit(d, "runs", lambda f: f.iloc[:0]),
        "runs.parquet has no runs",
    ),
    "an unknown status": (
        lambda d: edit(d, "runs", lambda f: f.assign(status=None)),
        "runs.parquet has status None; known: done, diverged, failed",
    ),
    "environment.json corrupt": (
        lambda d: (d / "environment.json").write_text("{not json"),
        "environment.json is not JSON (Expecting property name",
    ),
    "environment.json a list": (
        lambda d: (d / "environment.json").write_text("[1, 2]"),
        "environment.json is not a JSON object of texts",
    ),
}


@pytest.mark.parametrize("case", list(HAND_EDITED))
def test_the_report_refuses_hand_edited_tables_in_one_line(finished, tmp_path, capsys, case):
    _, suite_dir, _ = finished
    damage, message = HAND_EDITED[case]
    copy = tmp_path / "tiny"
    shutil.copytree(suite_dir, copy)
    damage(copy)
    assert report.main([str(copy), "--out", str(tmp_path / "report")]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: {copy}: ") and message in err, err
    assert err.endswith("; rerun `python -m benchmarks.run --suite tiny` to rebuild the tables\n")
    assert not (tmp_path / "report").exists()


def test_the_report_refuses_an_out_under_a_regular_file(finished, tmp_path, capsys):
    _, suite_dir, _ = finished
    (tmp_path / "file").write_text("")
    assert report.main([str(suite_dir), "--out", str(tmp_path / "file" / "report")]) == 2
    assert one_error_line(capsys) == (
        f"error: --out: cannot write to {tmp_path / 'file' / 'report'}: Not a directory\n"
    )


# 3: damaged run artifacts are set aside, and the run is trained or finished again


def copy_results(finished, tmp_path):
    suite, suite_dir, expected = finished
    out = tmp_path / "out"
    shutil.copytree(suite_dir, out / "tiny")
    return suite, out, expected


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", None])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_trained_again(
    finished, tmp_path, capsys, content
):
    suite, out, expected = copy_results(finished, tmp_path)
    run_dir = run_dir_of(out / "tiny", "wgan-gp")
    for name in (DONE_MARKER, "curves.parquet", "evals.parquet"):  # unfinished again
        (run_dir / name).unlink()
    state = run_dir / "state.pt"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2] if content is None else content)
    assert run("--suite", suite, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"{state} is unreadable (" in err and "weights_only" not in err
    assert "moved aside as state.pt.corrupt; the run starts again from the beginning" in err
    assert (run_dir / "state.pt.corrupt").read_bytes() == (
        data[: len(data) // 2] if content is None else content
    )
    assert (run_dir / "run.log").read_text().count("started on cpu") == 2
    assert_same_tables(out / "tiny", expected)


def test_a_checkpoint_of_another_run_is_set_aside_and_the_run_trained_again(
    finished, tmp_path, capsys
):
    suite, out, expected = copy_results(finished, tmp_path)
    run_dir, other = run_dir_of(out / "tiny", "wgan-gp"), run_dir_of(out / "tiny", "gan")
    for name in (DONE_MARKER, "curves.parquet", "evals.parquet"):
        (run_dir / name).unlink()
    shutil.copy(other / "state.pt", run_dir / "state.pt")  # valid, but the gan run's
    assert run("--suite", suite, "--out", out) == 0
    assert (
        f"{run_dir / 'state.pt'} cannot be resumed (checkpoint was written by a run with a "
        "different configuration); moved aside as state.pt.corrupt; the run starts again from "
        "the beginning\n"
    ) in capsys.readouterr().err
    assert (run_dir / "state.pt.corrupt").read_bytes() == (other / "state.pt").read_bytes()
    assert (run_dir / "run.log").read_text().count("started on cpu") == 2
    assert_same_tables(out / "tiny", expected)


@pytest.mark.parametrize(
    "damaged, content",
    [
        (DONE_MARKER, b"{not json"),
        (DONE_MARKER, b'{"run_id": "someone else"}'),
        (DONE_MARKER, None),  # this run's id and nothing else: a row that cannot be tabulated
        ("curves.parquet", b"garbage"),
        ("evals.parquet", b""),
    ],
)
def test_a_damaged_finished_run_is_set_aside_and_finished_again(
    finished, tmp_path, capsys, damaged, content
):
    suite, out, expected = copy_results(finished, tmp_path)
    run_dir = run_dir_of(out / "tiny", "gan")
    if content is None:
        content = json.dumps({"run_id": run_dir.name}).encode()
    (run_dir / damaged).write_bytes(content)
    assert run("--suite", suite, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"{run_dir / damaged} is unreadable (" in err and "Traceback" not in err
    assert (run_dir / f"{damaged}.corrupt").read_bytes() == content
    assert "resumed at generator iteration 20" in (run_dir / "run.log").read_text()
    assert_same_tables(out / "tiny", expected)


# 2 and 10: two runners on one results directory; stale temporary files


HOLD_LOCK = """
import sys
from pathlib import Path
from benchmarks.store import locked
with locked(Path(sys.argv[1]), sys.argv[2], print):
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_a_runner_waits_for_the_run_another_runner_holds(finished, tmp_path, capsys):
    suite, out, expected = copy_results(finished, tmp_path)
    run_dir = run_dir_of(out / "tiny", "gan")
    for name in (DONE_MARKER, "curves.parquet", "evals.parquet", "state.pt"):
        (run_dir / name).unlink()
    # The other runner: a process holding the run's lock until it is told to let go.
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out / "tiny"), run_dir.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline() == "holding\n"
        threading.Timer(2.0, lambda: other.communicate("done\n", timeout=30)).start()
        assert run("--suite", suite, "--out", out) == 0
    finally:
        other.kill()
    lock = out / "tiny" / ".locks" / f"{run_dir.name}.lock"
    holder = f"held by pid {other.pid} on {socket.gethostname()} since "
    assert f"{run_dir.name}: waiting for {lock}, {holder}" in capsys.readouterr().err
    log = (run_dir / "run.log").read_text()
    assert log.count("started on cpu") == 2  # the first run, then this one: never both at once
    assert_same_tables(out / "tiny", expected)


def test_a_runner_waiting_for_a_lock_holds_none_that_comes_later(tmp_path):
    """Runs' locks are taken in one global order (by run id), whatever order a group lists its
    runs in: a runner waiting for one holds none later in that order, so two runners that list
    a stacked group [0, 1] and [1, 0] never hold one run each while waiting for the other's."""
    suite = tiny_suite(tmp_path / "suite", seeds=(0, 1), strategies=("gan",))
    first, second = sorted(spec.run_id for spec in load_suite(str(suite)).runs())
    if load_suite(str(suite)).runs()[0].run_id == first:  # list the later run id first
        suite.write_text(suite.read_text().replace("seeds = [0, 1]", "seeds = [1, 0]"))
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out / "tiny"), first],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    command = ["-m", "benchmarks.run", "--suite", suite, "--out", out, "--stack", "2"]
    command += ["--workers", "1", "--no-report"]
    assert holder.stdout.readline() == "holding\n"
    runner = subprocess.Popen(
        [sys.executable, *map(str, command)], stderr=subprocess.PIPE, text=True
    )
    try:
        while f"{first}: waiting for" not in (line := runner.stderr.readline()):
            assert line, "the runner ended without waiting"
        filelock.FileLock(out / "tiny" / ".locks" / f"{second}.lock").acquire(0).lock.release()
        holder.communicate("done\n", timeout=30)
        runner.stderr.read()
        assert runner.wait(timeout=240) == 0
    finally:
        holder.kill()
        runner.kill()


def test_a_run_whose_directory_is_deleted_after_it_finished_is_a_failed_run(finished, tmp_path):
    """As when a run's directory is deleted while the rest of its suite trains: its row in
    this invocation's tables says failed, not done without curves (which stopped the report)."""
    suite, out, _ = copy_results(finished, tmp_path)
    specs = load_suite(str(suite)).runs()
    rows = [read_done(out / "tiny" / spec.run_id, print) for spec in specs]
    shutil.rmtree(out / "tiny" / specs[0].run_id)
    found = _suite_rows(specs, rows, out / "tiny")
    assert [row["status"] for row in found] == ["failed", "done"]
    assert found[0]["message"] == (
        f"FileNotFoundError: {out / 'tiny' / specs[0].run_id} lost its results after the run "
        "finished; run the command again to train it again"
    )
    assert found[1] is rows[1]


def test_a_suite_of_the_same_name_from_another_file_is_refused(finished, tmp_path, capsys):
    suite, out, expected = copy_results(finished, tmp_path)
    other = tiny_suite(tmp_path / "elsewhere", seeds=(0,), width=16)  # also tiny.toml
    assert run("--suite", other, "--out", out) == 2
    assert one_error_line(capsys) == (
        f"error: --out: {out.resolve() / 'tiny'} holds the runs of suite file {suite.resolve()}, "
        f"not of suite file {other.resolve()} (whose contents differ); give another --out (if "
        f"it is that suite moved and edited, delete {out.resolve() / 'tiny' / 'suite.json'})\n"
    )
    assert_same_tables(out / "tiny", expected)  # the first suite's tables are untouched
    assert run("--suite", suite, "--out", out) == 0  # the same file is welcome
    moved = tmp_path / "moved" / "tiny.toml"  # and so is the same suite from another place
    moved.parent.mkdir()
    shutil.copy(suite, moved)
    assert run("--suite", moved, "--out", out) == 0
    assert_same_tables(out / "tiny", expected)


def test_a_locks_directory_that_is_a_file_is_one_line(finished, tmp_path, capsys):
    suite, out, _ = copy_results(finished, tmp_path)
    shutil.rmtree(out / "tiny" / ".locks")
    (out / "tiny" / ".locks").write_text("a file where the locks go")
    assert run("--suite", suite, "--out", out) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: cannot lock {out / 'tiny' / '.locks' / 'suite.lock'}: File exists; the runs "
        "finished so far are kept: remove the cause and run the same command again\n"
    )


def test_a_table_that_cannot_be_replaced_is_one_line(finished, tmp_path, capsys):
    """An immutable runs.parquet (chattr +i: not even root may replace it), as a table on a
    read-only mount or owned by another user would be."""
    suite, out, _ = copy_results(finished, tmp_path)
    runs = out / "tiny" / "runs.parquet"
    if subprocess.run(["chattr", "+i", str(runs)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        assert run("--suite", suite, "--out", out) == 1
    finally:
        subprocess.run(["chattr", "-i", str(runs)], check=True)
    err = capsys.readouterr().err  # after the suite's progress bar
    assert "Traceback" not in err and err.count("error: ") == 1, err
    assert err.endswith(
        f"error: {runs}: Operation not permitted; the runs finished so far are kept: remove the "
        "cause and run the same command again\n"
    ), err


@pytest.mark.parametrize("limit", [3_000, 20_000])
def test_a_full_disk_is_one_line_and_exit_1(tmp_path, limit):
    """A full disk, as files that cannot grow past ``limit`` bytes (RLIMIT_FSIZE, whose write
    errors are EFBIG where a full disk's are ENOSPC): the runs fail, or the tables cannot be
    written, each in one line; no traceback."""

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    suite = tiny_suite(tmp_path / "suite", seeds=(0,))
    command = ["-m", "benchmarks.run", "--suite", suite, "--out", tmp_path / "out"]
    done = subprocess.run(
        [sys.executable, *map(str, command), "--workers", "1", "--no-report"],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "failed:"))]
    assert lines and all("File too large" in line for line in lines), done.stderr[-3000:]


def test_stale_temporary_files_of_interrupted_writes_are_removed(finished, tmp_path):
    suite, out, expected = copy_results(finished, tmp_path)
    run_dir = run_dir_of(out / "tiny", "gan")
    (run_dir / DONE_MARKER).unlink()
    stale = [out / "tiny" / "runs.parquetab12.tmp", run_dir / "state.ptx9.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    assert run("--suite", suite, "--out", out) == 0
    assert not any(path.exists() for path in stale)
    assert_same_tables(out / "tiny", expected)


# 5, 6, 9, 10: bad input stops the suite before any run, in one line, writing nothing


SWEEP = '[datasets.8gaussians]\narch = "mlp"\n[sweep]\nsamples = 3\nseed = 0\n'
BAD_SUITES = {
    "no class subsets on toy data": (
        '[datasets."8gaussians:3"]\narch = "mlp"\n',
        "[datasets.8gaussians:3]: dataset '8gaussians' has no classes to select '3' from",
    ),
    "an unknown class": (
        '[datasets."mnist-5k:12"]\narch = "dcgan28"\n',
        "[datasets.mnist-5k:12]: dataset 'mnist-5k' has no class '12'; accepted: 0, 1",
    ),
    "a size subset of no rows": (
        '[datasets."8gaussians:n=0"]\narch = "mlp"\n',
        "[datasets.8gaussians:n=0]: dataset '8gaussians': n must be an integer from 1 to",
    ),
    "n_critic a boolean": (
        '[datasets.8gaussians]\narch = "mlp"\n[datasets.8gaussians.hyperparameters.gan]\n'
        "n_critic = true\n",
        "n_critic must be an integer >= 1, a piecewise schedule",
    ),
    "an n_critic schedule with unsorted starts": (
        '[datasets.8gaussians]\narch = "mlp"\n[datasets.8gaussians.hyperparameters.gan]\n'
        'n_critic = { unit = "epoch", steps = [[0, 5], [40, 1], [20, 2]] }\n',
        "n_critic: the starts of steps must begin at 0 and increase, got [0, 40, 20]",
    ),
    "an n_critic schedule in an unknown unit": (
        '[datasets.8gaussians]\narch = "mlp"\n[datasets.8gaussians.hyperparameters.gan]\n'
        'n_critic = { unit = "hour", steps = [[0, 5]] }\n',
        "n_critic: unit must be one of epoch, gen_iter, got 'hour'",
    ),
    "a negative n_critic in a schedule": (
        '[datasets.8gaussians]\narch = "mlp"\n[datasets.8gaussians.hyperparameters.gan]\n'
        'n_critic = { unit = "gen_iter", steps = [[0, 5], [100, -1]] }\n',
        "n_critic: steps must be [start, n_critic] pairs",
    ),
    "two budgets, epochs and gen_iters": (
        '[datasets.8gaussians]\narch = "mlp"\nepochs = 2\ngen_iters = 100\n',
        "[datasets.8gaussians]: epochs and gen_iters are both budgets; give one",
    ),
    "epochs not a whole number": (
        '[datasets.8gaussians]\narch = "mlp"\nepochs = 2.5\n',
        "epochs must be an integer from 1 to 1,000,000, got 2.5",
    ),
    "lr_decay a string": (
        '[datasets.8gaussians]\narch = "mlp"\nlr_decay = "yes"\n',
        "lr_decay must be true or false, got 'yes'",
    ),
    "width a boolean": (
        '[datasets.8gaussians]\narch = "mlp"\nwidth = true\n',
        "width must be an integer from 1 to 65,536 or unset, got True",
    ),
    "an architecture that does not fit the data": (
        '[datasets.8gaussians]\narch = "dcgan28"\n',
        "[datasets.8gaussians] gan: architecture 'dcgan28' (",
    ),
    "a hyperparameters entry that is not a table": (
        '[hyperparameters]\ngan = 5\n[datasets.8gaussians]\narch = "mlp"\n',
        "[hyperparameters]: gan must be a table of hyperparameter values",
    ),
    "duplicate seeds": (
        'seeds = [0, 0]\n[datasets.8gaussians]\narch = "mlp"\n',
        "seeds lists 0 more than once",
    ),
    "a sweep range with low > high": (
        SWEEP + "[sweep.fields]\nwidth = { int-uniform = [64, 16] }\n",
        "[sweep].fields.width: int-uniform has low 64 > high 16",
    ),
    "a sweep of a field it cannot draw": (
        SWEEP + "[sweep.fields]\nseed = { choice = [1, 2] }\n",
        "[sweep].fields: unknown key seed; accepted: batch_size, critic_norm, depth,",
    ),
    "a log-uniform range reaching 0": (
        SWEEP + "[sweep.hyperparameters.gan]\nlr = { log-uniform = [0, 1e-3] }\n",
        "[sweep].hyperparameters.gan.lr: log-uniform needs bounds > 0, got [0, 0.001]",
    ),
    "an empty choice": (
        SWEEP + "[sweep.fields]\nwidth = { choice = [] }\n",
        "[sweep].fields.width: choice needs a non-empty list, got []",
    ),
    "an unknown distribution": (
        SWEEP + "[sweep.fields]\nwidth = { normal = [1, 2] }\n",
        "expected one of log-uniform, uniform, int-uniform, choice with its values",
    ),
    "a swept hyperparameter the strategy does not have": (
        SWEEP + "[sweep.hyperparameters.gan]\nclip = { uniform = [0.01, 0.1] }\n",
        "unknown hyperparameter clip; accepted: optimizer, lr, betas,",
    ),
    "a sweep of a strategy the suite does not run": (
        SWEEP + "[sweep.hyperparameters.wgan]\nlr = { uniform = [0.01, 0.1] }\n",
        "[sweep].hyperparameters: wgan is not among the suite's strategies (gan)",
    ),
    "a sweep of no samples": (
        '[datasets.8gaussians]\narch = "mlp"\n[sweep]\nsamples = 0\nseed = 0\n',
        "[sweep]: samples must be an integer from 1 to 100,000, got 0",
    ),
    "an integer beyond int64 (a run that trains, then cannot be tabulated)": (
        '[datasets.8gaussians]\narch = "mlp"\nheldout_every = 100000000000000000000\n',
        "datasets.8gaussians.heldout_every = 100000000000000000000 is beyond the 64-bit",
    ),
    "a count beyond its maximum": (
        '[datasets.8gaussians]\narch = "mlp"\n[eval]\nintermediate_samples = 1000000000000\n',
        "[eval]: intermediate_samples must be an integer from 1 to 10,000,000",
    ),
    "an eval_every beyond its maximum": (
        '[datasets.8gaussians]\narch = "mlp"\neval_every = 10000000000\n',
        "[datasets.8gaussians]: eval_every must be an integer from 1 to 1,000,000,000",
    ),
    "an infinite divergence limit": (
        '[datasets.8gaussians]\narch = "mlp"\ndivergence_limit = inf\n',
        "datasets.8gaussians.divergence_limit = inf: give a finite number",
    ),
    "a sweep bound that is nan": (
        SWEEP + "[sweep.hyperparameters.gan]\nlr = { uniform = [1e-4, nan] }\n",
        "sweep.hyperparameters.gan.lr.uniform[1] = nan: give a finite number",
    ),
    "an infinite sweep bound": (
        SWEEP + "[sweep.hyperparameters.gan]\nlr = { log-uniform = [1e-4, inf] }\n",
        "sweep.hyperparameters.gan.lr.log-uniform[1] = inf: give a finite number",
    ),
    "a sweep seed beyond int64": (
        '[datasets.8gaussians]\narch = "mlp"\n[sweep]\nsamples = 1\nseed = 9223372036854775808\n'
        "[sweep.fields]\nwidth = { choice = [8] }\n",
        "sweep.seed = 9223372036854775808 is beyond the 64-bit integers",
    ),
    "a critic norm the architecture does not offer": (
        '[datasets.8gaussians]\narch = "mlp"\ncritic_norm = "group"\n',
        "critic_norm must be one of none, batch, layer for arch mlp, got 'group'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SUITES))
def test_bad_suite_values_are_one_line_before_any_run(tmp_path, capsys, case):
    body, message = BAD_SUITES[case]
    head = "" if body.startswith("seeds") else "seeds = [0]\n"
    path = tmp_path / "bad.toml"
    path.write_text(head + 'strategies = ["gan"]\n' + body)
    assert run("--suite", path, "--out", tmp_path / "out") == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b'description = "caf\xe9"\n', "is not UTF-8 text (byte 18), which TOML requires"),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nests deeper than 16 levels"),
        (
            b"x = " + b"[" * 40 + b"]" * 40 + b"\n",
            ": x" + "[0]" * 15,
        ),
        (b"a = " + b"{b=" * 20 + b"1" + b"}" * 20 + b"\n", ": a.b.b.b.b.b.b.b.b.b.b.b.b.b.b.b"),
    ],
    ids=["latin-1", "5000 deep", "40 deep", "tables 20 deep"],
)
def test_undecodable_or_deeply_nested_suite_files_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert run("--suite", path, "--out", tmp_path / "out") == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


class NonScalarLoss(gans.JSLoss):
    name = "per-sample"

    def critic_loss(self, real_scores, fake_scores):
        return real_scores - fake_scores  # forgot .mean()


class NaNLoss(gans.JSLoss):
    name = "nan"

    def generator_loss(self, fake_scores):
        return fake_scores.mean() * float("nan")


@pytest.mark.parametrize(
    "loss, message",
    [(NonScalarLoss, "it must return a scalar tensor"), (NaNLoss, "it must be finite")],
)
def test_a_plugin_loss_returning_what_the_trainer_cannot_use_is_bad_input(
    tmp_path, capsys, loss, message
):
    class Broken(gans.Strategy):
        defaults = gans.Hyperparameters(optimizer="adam", lr=2e-4, betas=(0.5, 0.999))

        def make_loss(self):
            return loss()

    name = f"broken-{loss.name}"
    if name not in gans.STRATEGIES:
        gans.register_strategy(name, Broken, provider=__file__)
    suite = tiny_suite(tmp_path / "suite", strategies=(name,), seeds=(0,))
    assert run("--suite", suite, "--out", tmp_path / "out") == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: [datasets.25gaussians] {name}: loss strategy {name!r}")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_a_suite_file_name_that_is_not_a_directory_name_is_refused(tmp_path, capsys):
    path = tmp_path / "...toml"  # its stem, "..", would write into the parent of --out
    path.write_text('[datasets.8gaussians]\narch = "mlp"\n')
    assert run("--suite", path, "--out", tmp_path / "out") == 2
    assert "the suite's name, '..' (a file's name without .toml)" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--strategies", ",", "--strategies: no value given; the suite has gan, wgan-gp"),
        ("--seeds", "0,0", "--seeds: 0 given more than once"),
    ],
)
def test_empty_or_repeated_selections_are_refused(
    finished, tmp_path, capsys, option, value, message
):
    suite, _, _ = finished
    assert run("--suite", suite, "--out", tmp_path / "out", option, value) == 2
    assert one_error_line(capsys) == f"error: {message}\n"


def test_a_rejected_out_leaves_no_reports_directory(finished, tmp_path, capsys):
    suite, _, _ = finished
    (tmp_path / "file").write_text("")
    args = ["--suite", suite, "--out", tmp_path / "file", "--reports", tmp_path / "report"]
    assert main([str(a) for a in args]) == 2
    assert "--out: cannot write to" in one_error_line(capsys)
    assert not (tmp_path / "report").exists()


# 8: files written atomically get the mode of any other new file


def test_atomically_written_files_are_readable_by_the_group_and_others(tmp_path):
    mask = os.umask(0o022)
    try:
        gans.save_atomically({"x": torch.zeros(1)}, tmp_path / "state.pt")
        gans.write_atomically(tmp_path / "a.json", lambda tmp: open(tmp, "w").write("{}"))
        os.umask(0o027)
        gans.write_atomically(tmp_path / "b.json", lambda tmp: open(tmp, "w").write("{}"))
    finally:
        os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"state.pt": 0o644, "a.json": 0o644, "b.json": 0o640}
    assert json.loads((tmp_path / "b.json").read_text()) == {}
