"""Where results come from: the code, machine and library versions that computed each run.

Each run records its provenance when it trains (``run_provenance``), and again when it resumes
under another one: in its config.json, its checkpoint and, as columns, its runs-table row. The
reports list the distinct provenances of their runs (``provenance_summary``) and warn when a run
was trained with uncommitted changes or by another commit than the report's. ``benchmarks.run``
also writes environment.json when it starts: how the last invocation shared the machine, and the
versions of the libraries that evaluate and report.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from benchmarks.store import FAILED

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_FILE = "environment.json"
VERSIONED = ("torch", "torchvision", "torch-fidelity", "POT", "numpy", "pandas", "scipy", "seaborn")
# What computes a run's numbers: the library, the application and the declared dependencies.
# Docs, tests, examples and reports are not code here, so a change to them alone leaves runs
# trained by "this code" (plugins are hashed into their runs' ids: gans.plugin_sources).
CODE_PATHS = ("gans", "benchmarks", "pyproject.toml")
# The runs-table columns of a run's provenance: what its numbers depend on beyond its config. The
# code (commit, uncommitted changes), the CPU's kind and the instruction set torch's kernels use
# on it (other kinds round differently), the torch threads (CPU kernels split their sums by
# thread count), the GPU, and the torch and CUDA versions.
CODE_COLUMNS = ("commit", "code_dirty", "code_diff")
PROVENANCE_COLUMNS = (*CODE_COLUMNS, "cpu", "cpu_capability", "threads", "gpu", "torch", "cuda")
UNKNOWN = "unknown"
NOT_RECORDED = "not recorded"  # a run trained before runs recorded their provenance
RESUMED_JOIN = " then "  # a run resumed under another provenance: its values in order


_CLEAN = {"code_dirty": False, "code_diff": ""}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _git_output(root: Path, *args: str) -> bytes | None:
    done = _git(root, *args)
    return done.stdout if done is not None and done.returncode == 0 else None


def code_version(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The code of the checkout at ``root`` (this project's): its short commit, whether
    ``CODE_PATHS`` have uncommitted changes (tracked or untracked files, ignored ones not), and
    the first 12 hex of a SHA-256 of those changes ("" if none). Where ``root`` is not the top of
    a git checkout (an installed package), the commit is "unknown" with the package's version."""
    top = _git_output(root, "rev-parse", "--show-toplevel")
    # The package may sit inside another project's repository (a virtual environment in it).
    if top is None or Path(top.decode().strip()).resolve() != root.resolve():
        version = _version("gan-loss-benchmark")
        return {"commit": f"{UNKNOWN} (gan-loss-benchmark {version})", **_CLEAN}
    commit = (_git_output(root, "rev-parse", "--short", "HEAD") or b"unknown").decode().strip()
    diff = _git_output(root, "diff", "HEAD", "--binary", "--", *CODE_PATHS) or b""
    listed = _git_output(
        root, "ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_PATHS
    )
    untracked = [name for name in (listed or b"").decode().split("\0") if name]
    if not diff and not untracked:
        return {"commit": commit, **_CLEAN}
    digest = hashlib.sha256(diff)
    for name in sorted(untracked):
        digest.update(name.encode())
        try:
            digest.update((root / name).read_bytes())
        except OSError:  # removed since it was listed
            pass
    return {"commit": commit, "code_dirty": True, "code_diff": digest.hexdigest()[:12]}


@functools.cache
def _same_code_at(a: str, b: str, root: Path = PROJECT_ROOT) -> bool:
    """Whether commits ``a`` and ``b`` hold the same ``CODE_PATHS`` (False if either is unknown
    to this checkout). Commits never change, so the answer is kept."""
    if a == b:
        return True
    done = _git(root, "diff", "--quiet", a, b, "--", *CODE_PATHS)
    return done is not None and done.returncode == 0


def commits_of(row: dict[str, Any] | pd.Series) -> list[str]:
    """The commits a run was trained by ([] where not recorded): one, or several for a run
    resumed under another code."""
    commit = row.get("commit")
    if not isinstance(commit, str) or commit == NOT_RECORDED:
        return []
    return commit.split(RESUMED_JOIN)


def trained_here(row: dict[str, Any] | pd.Series, here: dict[str, Any]) -> bool:
    """Whether a run (a runs-table row or a provenance record) was trained by the code ``here``
    (``code_version``): the same commit's code, with the same uncommitted changes or none."""
    commits = commits_of(row)
    if not commits or row.get("code_diff", "") != here["code_diff"]:
        return False
    return all(_same_code_at(commit, here["commit"]) for commit in commits)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def run_provenance(device: str = "cpu", code: dict[str, Any] | None = None) -> dict[str, Any]:
    """What computes a run started now in this process on ``device``: ``PROVENANCE_COLUMNS``.
    ``code``: the invocation's ``code_version``, taken where the runner started (a Ray worker on
    another machine may have no checkout); None: this process's."""
    on_gpu = torch.device(device).type == "cuda"
    return {
        **(code or code_version()),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        "gpu": _gpu_name(device) if on_gpu else "none",
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only loads refuse
        "cuda": torch.version.cuda or "none",
    }


def _gpu_name(device: str) -> str:
    try:
        return torch.cuda.get_device_name(torch.device(device))
    except (RuntimeError, AssertionError):  # a device that cannot be queried still trains
        return UNKNOWN


def same_provenance(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(column) == b.get(column) for column in PROVENANCE_COLUMNS)


def not_recorded() -> dict[str, Any]:
    """The provenance of a run trained before runs recorded theirs."""
    return {column: NOT_RECORDED for column in PROVENANCE_COLUMNS} | {
        "code_dirty": False,
        "code_diff": "",
        "from_gen_iter": 0,
    }


def provenance_columns(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's provenance as runs-table columns: each value, or, for a run resumed under
    another, its distinct values in order joined by " then "; ``code_dirty`` if any part was."""
    columns = {
        column: RESUMED_JOIN.join(dict.fromkeys(str(r.get(column, UNKNOWN)) for r in records))
        for column in PROVENANCE_COLUMNS
    }
    columns["code_dirty"] = any(bool(r.get("code_dirty")) for r in records)
    columns["code_diff"] = RESUMED_JOIN.join(
        dict.fromkeys(r["code_diff"] for r in records if r.get("code_diff"))
    )
    return columns


def code_of(row: dict[str, Any] | pd.Series) -> str:
    """The code a run was trained by, in words: "3f2a1c9", "3f2a1c9 with uncommitted changes
    (diff 1a2b3c4d5e6f)", "3f2a1c9 then 5d6e7f8" (resumed), or "not recorded"."""
    commits = commits_of(row)
    if not commits:
        return NOT_RECORDED
    if row.get("code_dirty") in (True,):  # a bool, numpy's included; NaN where not recorded
        return f"{row['commit']} with uncommitted changes (diff {row.get('code_diff')})"
    return row["commit"]


def describe(row: dict[str, Any] | pd.Series) -> str:
    """A run's provenance in one line."""
    if not commits_of(row):
        return "provenance not recorded (trained before runs recorded it)"
    gpu = row.get("gpu")
    device = f"GPU {gpu} (CUDA {row.get('cuda')})" if gpu and gpu != "none" else "no GPU"
    threads = f"{row.get('threads')} torch thread{'' if row.get('threads') == '1' else 's'}"
    return (
        f"commit {code_of(row)}; CPU {row.get('cpu')} ({row.get('cpu_capability')}, {threads}); "
        f"{device}; torch {row.get('torch')}"
    )


def provenance_summary(runs: pd.DataFrame, here: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The distinct provenances of ``runs`` (one line each, with how many runs), and warnings:
    runs trained with uncommitted changes, before runs recorded their code, or by a commit whose
    code differs from that of ``here`` (the report's ``code_version``)."""
    runs = runs[runs["status"] != FAILED]  # a failed run has no results to come from anywhere
    if not len(runs):
        return [], []
    rows = runs.reindex(columns=list(PROVENANCE_COLUMNS)).astype(object).to_dict("records")
    described = pd.Series([describe(row) for row in rows])
    lines = [f"{text}: {n} run{'s' * (n > 1)}" for text, n in described.value_counts().items()]
    of = f" of {len(rows)} runs were trained"
    dirty = [code_of(row) for row in rows if row["code_dirty"] in (True,)]
    unrecorded = [row for row in rows if not commits_of(row)]
    other = [
        row["commit"]
        for row in rows
        if commits_of(row)
        and not all(_same_code_at(commit, here["commit"]) for commit in commits_of(row))
    ]
    warnings = []
    if dirty:
        warnings.append(
            f"{len(dirty)}{of} with uncommitted changes ({', '.join(dict.fromkeys(dirty))}): "
            "no commit reproduces them."
        )
    if unrecorded:
        warnings.append(
            f"{len(unrecorded)}{of} before runs recorded their code: nothing says which commit "
            "computed them."
        )
    if other:
        warnings.append(
            f"{len(other)}{of} by a commit whose code differs from this report's "
            f"({here['commit']}): {', '.join(dict.fromkeys(other))}."
        )
    return lines, warnings


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str = "cpu", schedule: str | None = None) -> dict[str, str]:
    """How this invocation shares the machine (``schedule``; default: one run at a time in this
    process), and its Python and library versions, as labelled strings."""
    schedule = schedule or f"one run at a time, {torch.get_num_threads()} torch threads"
    return {
        "schedule": f"{os.cpu_count()} logical CPUs, {schedule}; runs on {device}",
        "python": platform.python_version(),
        "libraries": ", ".join(f"{p} {_version(p)}" for p in VERSIONED),
    }


def environment_lines(env: dict[str, str]) -> list[tuple[str, str]]:
    """A suite's environment.json as the report's labelled lines: what its last invocation
    recorded (older versions wrote a commit and machine there too: those of that invocation,
    not of the runs)."""
    return [(f"{label} (last invocation)", value) for label, value in env.items()]


def read_environment(suite_dir: Path) -> dict[str, str]:
    """A suite's environment.json; {} if there is none.

    Raises:
        ValueError: it is not a JSON object of texts (a damaged or hand-edited file).
    """
    recorded = suite_dir / ENVIRONMENT_FILE
    if not recorded.exists():
        return {}
    try:
        found = json.loads(recorded.read_text())
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{recorded} is not JSON ({error})") from None
    if not (isinstance(found, dict) and all(isinstance(v, str) for v in found.values())):
        raise ValueError(f"{recorded} is not a JSON object of texts")
    return found
