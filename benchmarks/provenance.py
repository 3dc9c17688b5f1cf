"""Where results come from: the code, machine and library versions that computed each run.

Each run records its provenance when it trains (``run_provenance``), and again when it resumes
under another one: in its config.json, its checkpoint and, as columns, its runs-table row. The
reports list the distinct provenances of their runs (``provenance_summary``) and warn when a run
was trained with uncommitted changes or by another commit than the report's. ``benchmarks.run``
also writes environment.json when it starts: how the last invocation shared the machine, and the
versions of the libraries that evaluate and report.
"""

from __future__ import annotations

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
# Generated reports are output, not code: writing one under reports/ leaves the code unchanged.
NOT_CODE = ":(exclude)reports"
# The runs-table columns of a run's provenance: what its numbers depend on beyond its config. The
# code (commit, uncommitted changes), the CPU's kind and the instruction set torch's kernels use
# on it (other kinds round differently), the torch threads (CPU kernels split their sums by
# thread count), the GPU, and the torch and CUDA versions.
CODE_COLUMNS = ("commit", "code_dirty", "code_diff")
PROVENANCE_COLUMNS = (*CODE_COLUMNS, "cpu", "cpu_capability", "threads", "gpu", "torch", "cuda")
UNKNOWN = "unknown"
NOT_RECORDED = "not recorded"  # a run trained before runs recorded their provenance
RESUMED_JOIN = " then "  # a run resumed under another provenance: its values in order


def _git(root: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def code_version(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The short commit of the checkout at ``root`` (this project's), whether it has uncommitted
    changes (tracked or untracked files outside reports/, ignored ones not), and the first 12 hex
    of a SHA-256 of those changes ("" if none). The commit is "unknown" where ``root`` is not the
    top of a git checkout (an installed package)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    # The package may sit inside another project's repository (a virtual environment in it).
    if top is None or Path(top.decode().strip()).resolve() != root.resolve():
        return {"commit": UNKNOWN, "code_dirty": False, "code_diff": ""}
    commit = (_git(root, "rev-parse", "--short", "HEAD") or b"unknown").decode().strip()
    diff = _git(root, "diff", "HEAD", "--binary", "--", ".", NOT_CODE) or b""
    listed = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", ".", NOT_CODE)
    untracked = [name for name in (listed or b"").decode().split("\0") if name]
    if not diff and not untracked:
        return {"commit": commit, "code_dirty": False, "code_diff": ""}
    digest = hashlib.sha256(diff)
    for name in sorted(untracked):
        digest.update(name.encode())
        try:
            digest.update((root / name).read_bytes())
        except OSError:  # removed since it was listed
            pass
    return {"commit": commit, "code_dirty": True, "code_diff": digest.hexdigest()[:12]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def run_provenance(device: str = "cpu") -> dict[str, Any]:
    """What computes a run started now in this process on ``device``: ``PROVENANCE_COLUMNS``."""
    on_gpu = torch.device(device).type == "cuda"
    return {
        **code_version(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if on_gpu else "none",
        "torch": str(torch.__version__),  # a TorchVersion, which weights_only loads refuse
        "cuda": torch.version.cuda or "none",
    }


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
    (diff 1a2b3c4d5e6f)", or "not recorded"."""
    commit = row.get("commit")
    if commit is None or (isinstance(commit, float) and pd.isna(commit)):
        return NOT_RECORDED
    if row.get("code_dirty") in (True,):  # a bool, numpy's included; NaN where not recorded
        return f"{commit} with uncommitted changes (diff {row.get('code_diff')})"
    return str(commit)


def describe(row: dict[str, Any] | pd.Series) -> str:
    """A run's provenance in one line."""
    if row.get("commit") in (None, NOT_RECORDED) or pd.isna(row.get("commit")):
        return "provenance not recorded (trained before runs recorded it)"
    gpu = row.get("gpu")
    device = f"GPU {gpu} (CUDA {row.get('cuda')})" if gpu and gpu != "none" else "no GPU"
    return (
        f"commit {code_of(row)}; CPU {row.get('cpu')} ({row.get('cpu_capability')}, "
        f"{row.get('threads')} torch threads); {device}; torch {row.get('torch')}"
    )


def provenance_summary(runs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The distinct provenances of ``runs`` (one line each, with how many runs), and warnings:
    runs trained with uncommitted changes, by another commit than this checkout's, or before
    runs recorded their provenance."""
    runs = runs[runs["status"] != FAILED]  # a failed run has no results to come from anywhere
    if not len(runs):
        return [], []
    frame = runs.reindex(columns=list(PROVENANCE_COLUMNS)).astype(object)
    described = frame.apply(describe, axis=1)
    lines = [f"{text}: {n} run{'s' * (n > 1)}" for text, n in described.value_counts().items()]
    codes = frame.apply(code_of, axis=1)
    here = code_of(code_version())
    warnings = []
    if (dirty := codes.str.contains("uncommitted")).any():
        warnings.append(
            f"{dirty.sum()} of {len(runs)} runs were trained with uncommitted changes "
            f"({', '.join(dict.fromkeys(codes[dirty]))}): no commit reproduces them."
        )
    if (unrecorded := codes == NOT_RECORDED).any():
        warnings.append(
            f"{unrecorded.sum()} of {len(runs)} runs were trained before runs recorded their "
            "code: nothing says which commit computed them."
        )
    if (other := ~dirty & ~unrecorded & (codes != here)).any():
        warnings.append(
            f"{other.sum()} of {len(runs)} runs were trained by another commit than this "
            f"report's ({here}): {', '.join(dict.fromkeys(codes[other]))}."
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


def read_environment(suite_dir: Path) -> dict[str, str]:
    """A suite's environment.json without its superseded keys (the commit and machine that
    older versions wrote there: each run records its own now); {} if there is none."""
    recorded = suite_dir / ENVIRONMENT_FILE
    if not recorded.exists():
        return {}
    found = json.loads(recorded.read_text())
    return {key: value for key, value in found.items() if key not in ("commit", "machine")}
