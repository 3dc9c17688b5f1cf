"""Where runs execute: in this process, in worker processes, or as Ray tasks, one group of runs at
a time (a group of runs that differ only in seed trains stacked, ``group_runs``). Every executor
calls ``execute_group`` and hands each finished row to ``on_done``; results land in the same
store."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import threadpoolctl
import torch

import gans
from benchmarks.execute import execute_group, failed_row
from benchmarks.suites import RunSpec

OnDone = Callable[[dict[str, Any]], None]


Group = list[RunSpec]

# Where stacked runs measured faster than separate ones on the CPU (docs/performance.md, two
# cores): the mlp at width 64 in groups of 8 (1.11-1.25x); not in groups of 2 or 4 (0.75-1.11x),
# not at width 512 (0.87-0.91x), not the convolutional nets (0.80-0.94x), whose steps are
# arithmetic more than per-operation cost.
CPU_STACK = 8
CPU_STACK_MAX_WIDTH = 64
GPU_STACK = 16  # members per group on a GPU: small nets leave it idle between kernel launches


def auto_stack(device: str, train: gans.TrainConfig) -> tuple[int, int]:
    """How many runs ``--stack auto`` trains together for ``train`` on ``device``: the most, and
    the fewest worth stacking (a smaller group trains its runs alone)."""
    if torch.device(device).type == "cuda":
        return GPU_STACK, 2
    width = gans.ARCHITECTURES.get(train.arch).resolved_width(train.width)
    if train.arch == "mlp" and width <= CPU_STACK_MAX_WIDTH:
        return CPU_STACK, CPU_STACK
    return 1, 1


def group_runs(specs: list[RunSpec], stack: int | None, device: str) -> list[Group]:
    """``specs`` in groups of runs that differ only in seed, in the order of their first run: at
    most ``stack`` runs each, or with None (auto) as ``auto_stack`` says. ``stack`` 1: each run
    alone."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        config = {**spec.resolved, "train": {**spec.resolved["train"], "seed": None}}
        groups.setdefault(json.dumps(config, sort_keys=True, default=list), []).append(spec)
    result = []
    for members in groups.values():
        most, fewest = (stack, 1) if stack else auto_stack(device, members[0].train)
        for i in range(0, len(members), most):
            group = members[i : i + most]
            result += [group] if len(group) >= fewest else [[spec] for spec in group]
    return result


def run_in_process(
    groups: list[Group],
    suite_dir: Path,
    options: dict[str, Any],
    datasets: dict[str, gans.Dataset],
    on_done: OnDone,
) -> None:
    """One group after the other, sharing the already loaded datasets; run bars under the
    suite's."""
    for group in groups:
        data = datasets.get(group[0].train.dataset)
        for row in execute_group(group, suite_dir, data=data, **options):
            on_done(row)


_worker_device = "cpu"


def cpu_cores() -> int:
    """The CPU cores this process may use (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` processes gets an equal share of the cores, so none oversubscribes."""
    return max(1, cpu_cores() // workers)


def _init_worker(devices, threads: int) -> None:
    global _worker_device
    _worker_device = devices.get()
    torch.set_num_threads(threads)
    # NumPy's BLAS too (torch-fidelity's KID runs on it): left at one thread per core, every
    # worker's evaluation would compete with the other workers' training for the same cores.
    threadpoolctl.threadpool_limits(threads)


def _execute_in_worker(
    group: Group, suite_dir: Path, options: dict[str, Any]
) -> list[dict[str, Any]]:
    return execute_group(
        group, suite_dir, **{**options, "device": _worker_device, "progress": False}
    )


def run_in_workers(
    groups: list[Group], suite_dir: Path, options: dict[str, Any], workers: int, on_done: OnDone
) -> None:
    """``workers`` processes, each with its own device (one GPU each when several are present)
    and an equal share of the CPU threads, so they do not oversubscribe the cores."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked processes
    devices = context.Queue()
    device = torch.device(options["device"])
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    for worker in range(workers):
        devices.put(f"cuda:{worker % gpus}" if gpus > 1 else str(device))
    threads = threads_per_worker(workers)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(devices, threads)
    ) as pool:
        futures = {
            pool.submit(_execute_in_worker, group, suite_dir, options): group for group in groups
        }
        try:
            for future in as_completed(futures):
                for row in _result_or_failure(future.result, futures[future]):
                    on_done(row)
        except BaseException:  # Ctrl-C: start no queued run; finished ones reach the tables
            pool.shutdown(cancel_futures=True)
            raise


def run_on_ray(
    groups: list[Group],
    suite_dir: Path,
    options: dict[str, Any],
    address: str | None,
    on_done: OnDone,
) -> None:
    """Each group a Ray task (one GPU each on GPUs). ``address`` joins a running cluster ("auto"
    or HOST:PORT); None starts a local instance for this suite and stops it afterwards."""
    import ray  # the `ray` extra

    started_here = address is None
    ray.init(
        address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
    )
    pending = {}
    try:
        on_gpu = torch.device(options["device"]).type == "cuda"
        task = ray.remote(num_cpus=1, num_gpus=1 if on_gpu else 0)(execute_group)
        pending = {
            task.remote(
                group,
                suite_dir,
                **{**options, "device": "cuda" if on_gpu else "cpu", "progress": False},
            ): group
            for group in groups
        }
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready)
            for row in _result_or_failure(lambda ready=ready: ray.get(ready), group):
                on_done(row)
    finally:
        for ref in pending:  # after an interrupt, nothing keeps running on a shared cluster
            ray.cancel(ref)
        if started_here:
            ray.shutdown()


def _result_or_failure(
    get: Callable[[], list[dict[str, Any]]], group: Group
) -> list[dict[str, Any]]:
    # A worker that dies (out of memory, killed) raises here instead of returning failed rows.
    try:
        return get()
    except Exception as error:
        return [failed_row(spec, error) for spec in group]
