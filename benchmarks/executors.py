"""Where runs execute: in this process, in worker processes, or as Ray tasks, one group of runs at
a time (a group of runs that differ only in seed trains stacked, ``group_runs``). Every executor
calls ``execute_group`` and hands each finished row to ``on_done``; results land in the same
store."""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import threadpoolctl
import torch
from tqdm.auto import tqdm

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


def cpu_cores() -> int:
    """The CPU cores this process may use (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` processes gets an equal share of the cores, so none oversubscribes."""
    return max(1, cpu_cores() // workers)


class WorkerDied(Exception):
    """A worker process ended while it trained a group (killed, out of memory, crashed)."""


PARENT_POLL_S = 1.0  # how often a worker looks whether its runner is still there
STOP_WAIT_S = 10.0  # how long stopped workers get to exit before they are killed


def _worker_main(conn, device: str, threads: int, runner: int) -> None:
    """A worker process: train the groups the runner sends until it sends None or is gone."""
    # Ctrl-C reaches the whole process group: the runner stops its workers itself, so that it
    # alone reports the interrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock holds a multiprocessing semaphore, which a worker stopped mid-run would
    # leave behind (Python warns of it at the runner's exit); a worker draws no bars.
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_without, args=(runner,), daemon=True).start()
    torch.set_num_threads(threads)
    # NumPy's BLAS too (torch-fidelity's KID runs on it): left at one thread per core, every
    # worker's evaluation would compete with the other workers' training for the same cores.
    threadpoolctl.threadpool_limits(threads)
    while (task := _next_task(conn)) is not None:
        group, suite_dir, options = task
        try:
            rows = execute_group(
                group, suite_dir, **{**options, "device": device, "progress": False}
            )
        except Exception as error:  # execute_group catches a run's errors; this is the rest
            rows = [failed_row(spec, error) for spec in group]
        conn.send(rows)


def _next_task(conn) -> tuple[Group, Path, dict[str, Any]] | None:
    """The runner's next group, or None: it sent None, or it is gone (the pipe closed)."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _exit_without(runner: int) -> None:
    """End this process as soon as the runner that started it is gone, however it went (SIGKILL
    included): its runs keep their last checkpoints, and the system releases their locks."""
    while os.getppid() == runner:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


class _Worker:
    """One worker process, and the group it is training (None while idle)."""

    def __init__(self, context, device: str, threads: int):
        self.conn, child = context.Pipe()
        self.device = device
        self.process = context.Process(
            target=_worker_main, args=(child, device, threads, os.getpid()), name="gans-worker"
        )
        # Started with SIGINT ignored, which the new process keeps (Python installs its own
        # handler only where SIGINT is at its default): a Ctrl-C while it imports torch would
        # otherwise print its traceback. The runner stops its workers itself.
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.process.start()
        finally:
            signal.signal(signal.SIGINT, interrupt)
        child.close()
        self.group: Group | None = None

    def give(self, group: Group, suite_dir: Path, options: dict[str, Any]) -> None:
        self.group = group
        with contextlib.suppress(OSError):  # it died just now: its sentinel says so next
            self.conn.send((group, suite_dir, options))

    def rows(self) -> list[dict[str, Any]] | None:
        """The rows of its group once it sent them; None when the process has died instead."""
        try:
            rows = self.conn.recv()
        except (EOFError, OSError):
            return None
        self.group = None
        return rows

    def death(self) -> WorkerDied:
        """Why the process ended, once it has."""
        self.process.join()
        code = self.process.exitcode
        how = f"exit status {code}"
        if code is not None and code < 0:
            how = signal.Signals(-code).name + (
                " (an out-of-memory kill sends it)" if -code == signal.SIGKILL else ""
            )
        return WorkerDied(
            f"its worker process died while training it: {how}; the other runs went on"
        )

    def stopped(self) -> bool:
        """Whether it was told to stop (SIGTERM or SIGINT: a job manager, a kill), not broken."""
        return self.process.exitcode in (-signal.SIGTERM, -signal.SIGINT)

    def close(self) -> None:
        self.process.join()
        self.conn.close()


def run_in_workers(
    groups: list[Group], suite_dir: Path, options: dict[str, Any], workers: int, on_done: OnDone
) -> None:
    """``workers`` processes, each with its own device (one GPU each when several are present)
    and an equal share of the CPU threads, so they do not oversubscribe the cores. A worker that
    dies fails only the group it was training; another takes its place and the queue goes on.
    However this call ends (an interrupt included), no worker outlives it."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked processes
    device = torch.device(options["device"])
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    devices = [f"cuda:{slot % gpus}" if gpus > 1 else str(device) for slot in range(workers)]
    threads = threads_per_worker(workers)
    queue = collections.deque(groups)
    requeued: set[int] = set()  # groups whose worker was stopped by a signal: given again once
    pool: list[_Worker] = []
    try:
        for slot in range(workers):  # one at a time: an interrupt leaves none unlisted
            pool.append(_Worker(context, devices[slot], threads))
        while True:
            for slot, worker in enumerate(pool):
                if worker.group is None and queue:
                    if not worker.process.is_alive():  # it died between two groups
                        worker.close()
                        pool[slot] = worker = _Worker(context, worker.device, threads)
                    worker.give(queue.popleft(), suite_dir, options)
            busy = [worker for worker in pool if worker.group is not None]
            if not busy:
                return
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                # Rows sent just before it ended are still in the pipe: read them first.
                if (worker.conn in ready or worker.conn.poll()) and (rows := worker.rows()):
                    for row in rows:
                        on_done(row)
                if worker.process.is_alive():
                    continue
                group, worker.group = worker.group, None
                if group is not None and worker.stopped() and id(group) not in requeued:
                    requeued.add(id(group))  # a kill meant for it, not a broken run: resume it
                    queue.appendleft(group)
                elif group is not None:
                    error = worker.death()
                    for spec in group:
                        on_done(failed_row(spec, error))
                worker.close()
                pool.remove(worker)
                if queue:
                    pool.append(_Worker(context, worker.device, threads))
    finally:
        _stop(pool)


def _stop(pool: list[_Worker]) -> None:
    """Stop every worker: idle ones are told to end, busy ones (an interrupt) are terminated and
    leave their runs at the last checkpoint; any that will not end is killed."""
    for worker in pool:
        if worker.group is None:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        else:
            worker.process.terminate()
    deadline = time.monotonic() + STOP_WAIT_S
    for worker in pool:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
    pool.clear()


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
    sigterm = signal.getsignal(signal.SIGTERM)
    ray.init(
        address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
    )
    # ray.init replaces the SIGTERM handler with sys.exit: the runner's own (run.stops_cleanly)
    # stops the tasks, writes the tables and says how to resume.
    signal.signal(signal.SIGTERM, sigterm)
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
