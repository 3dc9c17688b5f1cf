"""The results store: one directory per run, suite-level tables written atomically.

results/<suite>/<run_id>/ holds config.json (the resolved config), state.pt (the last checkpoint
and the evaluations so far), run.log, curves.parquet, evals.parquet, samples/ (image grids),
toy.npz (toy data), error.log (after a failure) and done.json, the completion marker holding the
run's row. The suite's runs/curves/evals tables are rebuilt from the finished runs of the suite;
references.parquet holds the real-data floor of each of its datasets (``reference_rows``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

import gans
from gans import MetricRow, write_atomically

DONE_MARKER = "done.json"
# The tables' vocabulary, shared by the runner that writes them and the report that reads them.
FAILED = "failed"
INCEPTION_SUFFIX = "_inception"  # final-metric columns from Inception features: never mixed
# Evaluation stages: along the way (the intermediate plan, from iteration 0 on), the untrained
# generator at iteration 0 and the trained one at the end (both the final plan).
INTERMEDIATE, INITIAL, FINAL = "intermediate", "initial", "final"
REAL_DATA = "real data"  # the reference column of the real-data floor's rows
# A sweep's runs: the sample's index, and one column per drawn value (swept_lr, swept_width, ...).
SWEEP_SAMPLE, SWEPT_PREFIX = "sweep_sample", "swept_"
REFERENCES_TABLE = "references.parquet"
# A floor's row: which dataset, "real data", the stage whose plan it follows, then the metric row.
REFERENCE_COLUMNS = (
    "dataset",
    "reference",
    "stage",
    *(field.name for field in dataclasses.fields(MetricRow)),
)
CONFIG_COLUMNS = ("run_id", "strategy", "dataset", "arch", "width", "seed")
# The columns every curves and evals table has, rows or not (a suite whose runs all failed
# has none), so that readers never meet a table without them.
TABLE_COLUMNS = {
    "references": REFERENCE_COLUMNS,
    "curves": (*CONFIG_COLUMNS, "gen_iter", "critic_step", "elapsed_s", *gans.CURVE_COLUMNS),
    "evals": (
        *CONFIG_COLUMNS,
        "gen_iter",
        "elapsed_s",
        "stage",
        *(field.name for field in dataclasses.fields(MetricRow)),
    ),
}


def write_json(path: Path, obj: Any) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def write_table(path: Path, frame: pd.DataFrame) -> None:
    write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


Warn = Callable[[str], None]
LOCKS_DIR = ".locks"
SUITE_LOCK = "suite"  # held while the suite-level files are written; a run's lock is its id
CORRUPT_SUFFIX = ".corrupt"


LOCK_REMINDER_S = 600  # a runner waiting for a lock says so again every ten minutes


@contextlib.contextmanager
def locked(suite_dir: Path, name: str, warn: Warn) -> Iterator[None]:
    """Hold the advisory lock ``name`` of ``suite_dir`` (an flock: released when the process
    ends, however it ends). A lock another process holds is waited for, with one line to ``warn``
    naming the holder (pid, host, since when; ``<name>.holder`` beside the lock), repeated every
    LOCK_REMINDER_S. Callers that hold several locks take them in sorted order, so that runners
    never wait for each other in a circle. On a shared file system (Ray workers on several
    machines) the locks are only as good as the file system's flock support.

    Raises:
        OSError: the lock file cannot be created or opened (``.locks`` is a file, or another
            user's lock file); its message names the file.
    """
    path = suite_dir / LOCKS_DIR / f"{name}.lock"
    holder = path.with_suffix(".holder")
    lock = filelock.FileLock(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except filelock.Timeout:
        while True:
            warn(f"{name}: waiting for {path}, {_holder(holder)}")
            try:
                lock.acquire(timeout=LOCK_REMINDER_S)
                break
            except filelock.Timeout:
                continue
    except OSError as error:  # FileExistsError, NotADirectoryError, PermissionError
        raise OSError(error.errno, f"cannot lock {path}: {error.strerror}") from None
    try:
        # Who holds it, for the messages only: written in place (a reader that finds it half
        # written says "another runner"), so that no temporary file outlives a kill.
        with contextlib.suppress(OSError):
            me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
            holder.write_text(json.dumps(me))
        yield
    finally:
        with contextlib.suppress(OSError):
            holder.unlink()  # before the release: a waiter never reads a holder that has gone
        lock.release()


def _holder(holder: Path) -> str:
    try:
        who = json.loads(holder.read_text())
        pid, host, since = who["pid"], who["host"], who["since"]
    except (OSError, ValueError, KeyError, TypeError):
        return "held by another runner"
    return (
        f"held by pid {pid} on {host} since {since}: if that process is stuck, stop it (kill "
        f"{pid} on {host}); the system releases the lock when it exits"
    )


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def remove_stale_temporaries(directory: Path) -> None:
    """Delete what interrupted atomic writes left in ``directory`` (``write_atomically`` names
    its temporary files ``<name>...tmp``). Call it only under the lock of whoever writes there."""
    for tmp in directory.glob("*.tmp"):
        tmp.unlink(missing_ok=True)


def set_aside(path: Path, error: BaseException | str, problem: str = "is unreadable") -> str:
    """Move a damaged file to ``<path>.corrupt`` (replacing an earlier one) and say so."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    reason = " ".join(reason.split())[:200]
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, target)
    return f"{path} {problem} ({reason}); moved aside as {target.name}"


def read_done(run_dir: Path, warn: Warn) -> dict[str, Any] | None:
    """The row of a finished run; None when it is not finished.

    A completion marker that cannot be read, or whose run tables (curves, evals) cannot, makes
    the run unfinished: the damaged files are set aside (``set_aside``, one line to ``warn``), and
    the next attempt finishes the run again from its checkpoint.
    """
    marker = run_dir / DONE_MARKER
    if not marker.exists():
        return None
    try:
        row = json.loads(marker.read_text())
        if not (isinstance(row, dict) and row.get("run_id") == run_dir.name):
            raise ValueError(f"not the completion marker of run {run_dir.name}")
        # A row without these cannot be tabulated: it would stop every report of the suite.
        if missing := sorted({*CONFIG_COLUMNS, "status"} - row.keys()):
            raise ValueError(f"the completion marker lacks {', '.join(missing)}")
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError included
        warn(set_aside(marker, error) + "; the run will be finished again")
        return None
    for name in ("curves", "evals"):
        table = run_dir / f"{name}.parquet"
        try:
            pd.read_parquet(table)
        except (OSError, ValueError) as error:  # a missing file is an OSError too
            if table.exists():
                warn(set_aside(table, error))
            warn(set_aside(marker, f"{table.name} unreadable") + "; the run will be finished again")
            return None
    return row


def collect_tables(
    suite_dir: Path, run_rows: list[dict[str, Any]]
) -> dict[str, pd.DataFrame] | None:
    """Write runs/curves/evals tables (and runs.csv) for ``run_rows``, config columns on every row.
    Hold the suite lock (``locked(suite_dir, SUITE_LOCK, ...)``) around it.

    Returns:
        The three tables by name; None (and nothing written) when there are no rows.
    """
    if not run_rows:
        return None
    runs = pd.DataFrame(run_rows)
    config = runs[list(CONFIG_COLUMNS)]
    tables = {"runs": runs}
    for name in ("curves", "evals"):
        parts = [
            pd.read_parquet(suite_dir / row["run_id"] / f"{name}.parquet")
            for row in run_rows
            if (suite_dir / row["run_id"] / f"{name}.parquet").exists()
        ]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"run_id": []})
        tables[name] = with_columns(config.merge(frame, on="run_id", how="right"), name)
    # runs.parquet last: the report starts from it, and finds the others of the same write.
    write_atomically(suite_dir / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False))
    for name in ("curves", "evals", "runs"):
        write_table(suite_dir / f"{name}.parquet", tables[name])
    return tables


def with_columns(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` with every column of the ``name`` table (missing ones empty), in table order."""
    columns = TABLE_COLUMNS.get(name, ())
    return frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))
