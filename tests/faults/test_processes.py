"""The runner's processes: a worker that dies fails only its own run and the queue goes on;
SIGINT and SIGTERM, to the runner alone or to its whole process group, stop every process within
seconds with one line and exit 130 / 143; workers end when their runner is killed outright.

Each test starts ``python -m benchmarks.run`` as a process of its own (in a session of its own, so
that a signal to its group reaches nothing else) on a suite whose runs take tens of seconds, and
signals it once its runs have started.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pandas as pd
import pytest
import torch
from tiny_suites import tiny_suite

from benchmarks.executors import PARENT_POLL_S, STOP_WAIT_S
from benchmarks.store import LOCKS_DIR

# Runs long enough to be signalled mid-training (tens of seconds each on one core), checkpointed
# every 500 generator iterations, so that the resumed runs have something to resume from.
LONG = "gen_iters = 200000"
STARTUP_S = 120  # a spawned worker imports torch before its run starts: seconds on a busy machine


def start(suite: Path, out: Path, *options: str) -> subprocess.Popen:
    args = ["--suite", suite, "--out", out, "--no-report", "--stack", "1", *options]
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killpg reaches it and its workers only
    )


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def assert_all_end(pids: list[int], within: float) -> None:
    """Every process of ``pids`` ends within ``within`` seconds (multiprocessing's resource
    tracker, a child of the runner too, ends once the last of the others has)."""
    deadline = time.monotonic() + within
    while living := [pid for pid in pids if alive(pid)]:
        assert time.monotonic() < deadline, f"processes {living} outlived their runner"
        time.sleep(0.1)


def wait_for_runs(suite_dir: Path, count: int) -> None:
    """Until ``count`` runs have trained past their first evaluation (a checkpoint written)."""
    deadline = time.monotonic() + STARTUP_S
    while len(list(suite_dir.glob("*/state.pt"))) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs started"
        time.sleep(0.2)


def stopped(runner: subprocess.Popen, code: int) -> str:
    """The runner's stderr, once it has exited with ``code``, in one line and no traceback."""
    _, err = runner.communicate(timeout=STOP_WAIT_S + 30)
    assert runner.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.rstrip("\n").rsplit("\n", 1)[-1]
    name = signal.Signals(code - 128).name
    assert last == (
        f"stopped by {name}: finished runs are kept in the tables; run the same command again "
        "to resume the others from their last checkpoints"
    ), err[-3000:]
    return err


@pytest.fixture
def long_suite(tmp_path) -> Path:
    path = tiny_suite(tmp_path / "suite", budget=LONG)
    path.write_text(path.read_text().replace("eval_every = 10", "eval_every = 500"))
    return path


def assert_resumable(suite_dir: Path) -> None:
    """Every checkpoint loads, and no run's lock is still held."""
    for state in suite_dir.glob("*/state.pt"):
        assert "trainer" in torch.load(state, weights_only=True)
    for lock in (suite_dir / LOCKS_DIR).glob("*.lock"):
        filelock.FileLock(lock).acquire(timeout=0).lock.release()


@pytest.mark.parametrize("to", ["runner", "group"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_runner_and_its_workers(tmp_path, long_suite, to, sig):
    out = tmp_path / "out"
    runner = start(long_suite, out, "--workers", "2")
    wait_for_runs(out / "tiny", 2)
    workers = children(runner.pid)
    assert len(workers) >= 2
    (os.kill if to == "runner" else os.killpg)(runner.pid, sig)
    stopped(runner, 128 + sig)
    assert_all_end(workers, within=5)
    assert_resumable(out / "tiny")


def test_ctrl_c_to_a_runner_without_workers_is_one_line(tmp_path, long_suite):
    out = tmp_path / "out"
    runner = start(long_suite, out, "--workers", "1")
    wait_for_runs(out / "tiny", 1)
    os.killpg(runner.pid, signal.SIGINT)
    stopped(runner, 130)
    assert_resumable(out / "tiny")


def test_workers_end_when_their_runner_is_killed_outright(tmp_path, long_suite):
    out = tmp_path / "out"
    runner = start(long_suite, out, "--workers", "2")
    wait_for_runs(out / "tiny", 2)
    workers = children(runner.pid)
    runner.kill()
    runner.communicate()
    assert_all_end(workers, within=5 + 2 * PARENT_POLL_S)


# Kills its own worker process (SIGKILL, as the out-of-memory killer does, or SIGTERM, as a job
# manager or a user's kill does) in the first run that claims the marker file; the runner's own
# process (its check of the strategy) is spared.
KILLER_PLUGIN = """
import multiprocessing
import os
import signal

import gans

MARKER = {marker!r}


class KillerLoss(gans.JSLoss):
    name = "killer"

    def generator_loss(self, fake_scores):
        if multiprocessing.parent_process() is not None:
            try:
                os.unlink(MARKER)  # only one run claims it
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.{signal})
        return super().generator_loss(fake_scores)


class Killer(gans.Strategy):
    defaults = gans.Hyperparameters(optimizer="adam", lr=2e-4, betas=(0.5, 0.999))

    def make_loss(self):
        return KillerLoss()


gans.register_strategy("killer", Killer, provider=__file__)
"""


def killer(tmp_path: Path, sig: str) -> Path:
    marker = tmp_path / "kill-one-worker"
    marker.touch()
    plugin = tmp_path / "killer_plugin.py"
    plugin.write_text(KILLER_PLUGIN.format(marker=str(marker), signal=sig))
    return plugin


def test_a_worker_stopped_by_sigterm_has_its_run_resumed_by_another(tmp_path):
    plugin = killer(tmp_path, "SIGTERM")
    suite = tiny_suite(tmp_path / "suite", strategies=("gan", "killer"), seeds=(0, 1, 2))
    runner = start(suite, tmp_path / "out", "--plugin", plugin, "--workers", "2")
    _, err = runner.communicate(timeout=600)
    assert runner.returncode == 0, err[-3000:]
    runs = pd.read_parquet(tmp_path / "out" / "tiny" / "runs.parquet")
    assert list(runs["status"]) == ["done"] * 6
    logs = [p.read_text() for p in (tmp_path / "out" / "tiny").glob("*/run.log")]
    # The stopped run was given to a worker again (before its first checkpoint: from the start).
    assert sorted(log.count("started on") for log in logs) == [1, 1, 1, 1, 1, 2]


def test_a_worker_that_dies_fails_only_its_own_run(tmp_path):
    plugin = killer(tmp_path, "SIGKILL")
    suite = tiny_suite(tmp_path / "suite", strategies=("gan", "killer"), seeds=(0, 1, 2))
    out = tmp_path / "out"
    args = ["--plugin", plugin, "--workers", "2"]
    runner = start(suite, out, *args)
    _, err = runner.communicate(timeout=600)
    assert runner.returncode == 1, err[-3000:]
    runs = pd.read_parquet(out / "tiny" / "runs.parquet")
    failed = runs[runs["status"] == "failed"]
    assert len(runs) == 6 and len(failed) == 1, runs[["strategy", "seed", "status", "message"]]
    assert failed["strategy"].item() == "killer"
    assert failed["message"].item() == (
        "WorkerDied: its worker process died while training it: SIGKILL (an out-of-memory kill "
        "sends it); the other runs went on"
    )
    assert (runs["status"] != "failed").sum() == 5
    # The next invocation trains the failed run and skips the others.
    again = start(suite, out, *args)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    runs = pd.read_parquet(out / "tiny" / "runs.parquet")
    assert list(runs["status"]) == ["done"] * 6
