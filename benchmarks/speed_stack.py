"""Suite throughput of stacked runs against separate ones, scheduled as the runner schedules them.

    python -m benchmarks.speed --stack 1,2,4,8 --arch mlp --dataset 8gaussians --width 64 \\
        --batch 256 --iters 20

For each K, every worker (``--workers auto``: one single-threaded process per CPU core, one per
GPU) trains K runs of one configuration that differ only in seed, first one after the other as
separate runs (what the runner does without --stack), then as one stacked group (``gans.
StackedTrainer``), ``--iters`` generator iterations each, in windows that alternate which comes
first every round; all workers train at once, as in a suite. The rate of a window is member
generator iterations per second over all workers: K x iters x workers / the window's wall-clock.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

import gans
from benchmarks.bootstrap import bootstrap_ci
from benchmarks.executors import cpu_cores, threads_per_worker

SEPARATE, STACKED = "separate", "stacked"


@dataclass(frozen=True)
class Setting:
    """What one measurement trains: K runs of this configuration, seeds 0..K-1."""

    strategy: str
    arch: str
    dataset: str
    width: int
    batch: int
    precision: str = "fp32"
    compile: bool = False

    def config(self, seed: int) -> gans.TrainConfig:
        return gans.TrainConfig(
            strategy=self.strategy,
            dataset=self.dataset,
            arch=self.arch,
            width=self.width,
            batch_size=self.batch,
            gen_iters=10**9,
            seed=seed,
            precision=self.precision,
            log_every=10**9,  # the copy to the host at the end of each train() call only
            heldout_every=10**9,
            layer_grads_every=10**9,
        )


class Members:
    """K runs of ``setting`` on ``device``, trained separately or stacked for timing."""

    def __init__(self, setting: Setting, k: int, mode: str, data: gans.Dataset, device):
        self.mode, self.k = mode, k
        self.trainers = [
            gans.Trainer(
                setting.config(seed),
                device=device,
                data=data,
                progress=False,
                compile=setting.compile and mode == SEPARATE,
            )
            for seed in range(k)
        ]
        self.group = (
            gans.StackedTrainer(self.trainers, progress=False, compile=setting.compile)
            if mode == STACKED
            else None
        )

    def train(self, iters: int) -> None:
        """``iters`` more generator iterations of every member; returns once the device is done
        (``train`` copies the curves to the host at its end)."""
        if self.group is not None:
            self.group.train(until=self.trainers[0].gen_iter + iters)
        else:
            for trainer in self.trainers:
                trainer.train(until=trainer.gen_iter + iters)


def _worker(connection, device: str, threads: int) -> None:
    try:
        _serve(connection, device, threads)
    except Exception as error:  # the coordinator raises it: never left waiting for a reply
        connection.send(error)


def _serve(connection, device: str, threads: int) -> None:
    torch.set_num_threads(threads)
    members: dict[tuple[str, int], Members] = {}
    while (message := connection.recv()) is not None:
        command, *args = message
        if command == "setup":
            setting, ks, warmup = args
            data = gans.load_dataset(setting.dataset).to(device, torch.channels_last)
            members = {
                (mode, k): Members(setting, k, mode, data, device)
                for k in ks
                for mode in (SEPARATE, STACKED)
            }
            for group in members.values():
                group.train(warmup)
            connection.send("ready")
        else:  # "train"
            mode, k, iters = args
            start = time.perf_counter()
            members[(mode, k)].train(iters)
            connection.send(time.perf_counter() - start)


def _replies(pipes) -> list:
    replies = [pipe.recv() for pipe in pipes]
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def measure_stacking(
    setting: Setting,
    ks: tuple[int, ...],
    iters: int,
    repeats: int,
    device: str = "cpu",
    workers: int | None = None,
    warmup: int = 2,
) -> list[dict]:
    """Member generator iterations per second, separate and stacked, for each K in ``ks``.

    Returns: one row per K: both rates (medians over ``repeats`` rounds, and each round's),
    ``speedup`` (the
    median over rounds of stacked / separate, each ratio from two adjacent windows) and
    ``speedup_ci95`` (a percentile-bootstrap interval of that median; None under 3 rounds)."""
    on_gpu = torch.device(device).type == "cuda"
    gpus = torch.cuda.device_count() if on_gpu else 0
    workers = workers or (gpus if on_gpu else cpu_cores())
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for w in range(workers):
        mine, theirs = context.Pipe()
        worker_device = f"cuda:{w % gpus}" if gpus > 1 else device
        process = context.Process(
            target=_worker, args=(theirs, worker_device, threads_per_worker(workers)), daemon=True
        )
        process.start()
        pipes.append(mine)
        processes.append(process)
    try:
        for pipe in pipes:
            pipe.send(("setup", setting, ks, warmup))
        _replies(pipes)
        rates = {(mode, k): [] for k in ks for mode in (SEPARATE, STACKED)}
        for repeat in range(repeats):
            for k in ks:
                order = (SEPARATE, STACKED) if repeat % 2 == 0 else (STACKED, SEPARATE)
                for mode in order:
                    start = time.perf_counter()
                    for pipe in pipes:
                        pipe.send(("train", mode, k, iters))
                    _replies(pipes)
                    window = time.perf_counter() - start
                    rates[(mode, k)].append(k * iters * workers / window)
    finally:
        for pipe, process in zip(pipes, processes):
            if process.is_alive():
                pipe.send(None)
            process.join(timeout=30)
    rows = []
    for k in ks:
        ratios = [s / p for s, p in zip(rates[(STACKED, k)], rates[(SEPARATE, k)])]
        low, high = bootstrap_ci((np.array(ratios),), np.median)
        rows.append(
            {
                **setting.__dict__,
                "k": k,
                "workers": workers,
                "threads_per_worker": threads_per_worker(workers),
                "device": device,
                "separate_member_iters_per_s": statistics.median(rates[(SEPARATE, k)]),
                "stacked_member_iters_per_s": statistics.median(rates[(STACKED, k)]),
                "separate_rounds": rates[(SEPARATE, k)],
                "stacked_rounds": rates[(STACKED, k)],
                "speedup": statistics.median(ratios),
                "speedup_ci95": None if np.isnan(low) else [low, high],
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"{'strategy':10s} {'K':>3s} {'separate it/s':>14s} {'stacked it/s':>13s} "
        f"{'stacked/separate':>17s}"
    )
    for row in rows:
        ci = row["speedup_ci95"]
        interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        print(
            f"{row['strategy']:10s} {row['k']:3d} {row['separate_member_iters_per_s']:14.1f} "
            f"{row['stacked_member_iters_per_s']:13.1f} {row['speedup']:8.2f}{interval}"
        )
