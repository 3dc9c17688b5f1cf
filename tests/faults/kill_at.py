"""Run ``benchmarks.run`` and kill it (SIGKILL: no cleanup, no flush) at the K-th kill point, or
count the kill points of an uninterrupted run. The fault-injection tests run this as a script:

    python kill_at.py K LOG -- ARGS...      # K = -1: never kill; LOG gets one line per point

Kill points: every atomic rename (the temporary file is written, the target not yet replaced:
the middle of a write of a table, checkpoint, marker or report file), every copy of the curves
to the host (mid-training, with iterations not yet checkpointed), every evaluation and every
real-data floor. Each is logged as it is reached, before the kill, as "<index> <label>".
"""

import os
import signal
import sys
from pathlib import Path

import gans
from benchmarks.run import main

kill_at, log_path = int(sys.argv[1]), Path(sys.argv[2])
args = sys.argv[sys.argv.index("--") + 1 :]
reached = 0
log = open(log_path, "a", buffering=1)  # line-buffered: every line is on disk before a kill


def point(label: str) -> None:
    global reached
    log.write(f"{reached} {label}\n")
    if reached == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    reached += 1


def _file(path: Path) -> str:
    if path.parent.name == "tiny":  # the suite's directory (the tests' suites are tiny.toml)
        return f"suite {path.name}"
    if path.parent.parent.name == "tiny":
        return f"run {path.name}"
    if path.parent.name == "report":  # the tests' --reports: pages, figures, GIFs, the marker
        return f"report {path.name}"
    return "cache file"  # a cached real-data floor, classifier or feature file


def before(label, function):
    def wrapped(*a, **k):
        point(label(*a, **k))
        return function(*a, **k)

    return wrapped


os.replace = before(lambda src, dst: f"mid-write {_file(Path(dst))}", os.replace)
gans.Trainer._flush = before(lambda self: "training", gans.Trainer._flush)
gans.evaluate = before(lambda *a, **k: "evaluation", gans.evaluate)
gans.evaluate_real = before(lambda *a, **k: "real-data floor", gans.evaluate_real)
sys.exit(main(args))
