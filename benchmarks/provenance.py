"""Where results come from: the commit, machine and library versions a suite ran with.

``benchmarks.run`` writes them to results/<suite>/environment.json when it starts; the report
prints them, so a report says what produced its numbers even when it is generated elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_FILE = "environment.json"
VERSIONED = ("torch", "torchvision", "torch-fidelity", "POT", "numpy", "pandas", "scipy", "seaborn")


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str:
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    if commit is None:
        return "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return f"{commit} (with uncommitted changes)" if dirty else commit


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str = "cpu", schedule: str | None = None) -> dict[str, str]:
    """The commit, machine, Python and library versions of this process, as labelled strings.
    ``schedule`` says how runs share the machine (default: one at a time in this process)."""
    schedule = schedule or f"one run at a time, {torch.get_num_threads()} torch threads"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "commit": git_commit(),
        "machine": f"CPU {cpu_model()}; GPU {gpu}; {os.cpu_count()} logical CPUs, "
        f"{schedule}; runs on {device}",
        "python": platform.python_version(),
        "libraries": ", ".join(f"{p} {_version(p)}" for p in VERSIONED),
    }
