"""Where runs execute: in this process, in worker processes, or as Ray tasks. Every executor calls
``execute_run`` and hands each finished row to ``on_done``; results land in the same store."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import threadpoolctl
import torch

import gans
from benchmarks.execute import execute_run, failed_row
from benchmarks.suites import RunSpec

OnDone = Callable[[dict[str, Any]], None]


def run_in_process(
    specs: list[RunSpec],
    suite_dir: Path,
    options: dict[str, Any],
    datasets: dict[str, gans.Dataset],
    on_done: OnDone,
) -> None:
    """One run after the other, sharing the already loaded datasets; run bars under the suite's."""
    for spec in specs:
        on_done(execute_run(spec, suite_dir, data=datasets.get(spec.train.dataset), **options))


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


def _execute_in_worker(spec: RunSpec, suite_dir: Path, options: dict[str, Any]) -> dict[str, Any]:
    return execute_run(spec, suite_dir, **{**options, "device": _worker_device, "progress": False})


def run_in_workers(
    specs: list[RunSpec], suite_dir: Path, options: dict[str, Any], workers: int, on_done: OnDone
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
            pool.submit(_execute_in_worker, spec, suite_dir, options): spec for spec in specs
        }
        try:
            for future in as_completed(futures):
                on_done(_result_or_failure(future.result, futures[future]))
        except BaseException:  # Ctrl-C: start no queued run; finished ones reach the tables
            pool.shutdown(cancel_futures=True)
            raise


def run_on_ray(
    specs: list[RunSpec],
    suite_dir: Path,
    options: dict[str, Any],
    address: str | None,
    on_done: OnDone,
) -> None:
    """Each run a Ray task (one GPU each on GPUs). ``address`` joins a running cluster ("auto"
    or HOST:PORT); None starts a local instance for this suite and stops it afterwards."""
    import ray  # the `ray` extra

    started_here = address is None
    ray.init(
        address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
    )
    pending = {}
    try:
        on_gpu = torch.device(options["device"]).type == "cuda"
        task = ray.remote(num_cpus=1, num_gpus=1 if on_gpu else 0)(execute_run)
        pending = {
            task.remote(
                spec,
                suite_dir,
                **{**options, "device": "cuda" if on_gpu else "cpu", "progress": False},
            ): spec
            for spec in specs
        }
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready)
            on_done(_result_or_failure(lambda ready=ready: ray.get(ready), spec))
    finally:
        for ref in pending:  # after an interrupt, nothing keeps running on a shared cluster
            ray.cancel(ref)
        if started_here:
            ray.shutdown()


def _result_or_failure(get: Callable[[], dict[str, Any]], spec: RunSpec) -> dict[str, Any]:
    # A worker that dies (out of memory, killed) raises here instead of returning a failed row.
    try:
        return get()
    except Exception as error:
        return failed_row(spec, error)
