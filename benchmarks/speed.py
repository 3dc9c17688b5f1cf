"""Measure the training step against the machine's dense-matmul speed.

    python -m benchmarks.speed --strategy wgan-gp --width 64 --batch 64 --iters 20 --json

Trains ``--iters`` generator iterations on mnist-5k (or ``--dataset``) after a warm-up and reports
generator iterations and critic steps per second, the FLOPs of one generator iteration (counted by
torch.utils.flop_counter, double backward of the gradient penalty included), the FLOP rate that
gives, and the FLOP rate of a dense float32 matmul measured in the same process just before, so
their ratio means something on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import gans

GEMM_SIZE = 1024  # large enough to reach the BLAS peak, small enough to time in well under 1 s
GEMM_REPEATS = 10


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose hooks make torch.autograd.grad
    (the gradient penalty's double backward) fail with "A leaf node was passed to
    _will_engine_execute_node"; only the total is needed here."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def count_flops() -> FlopCounterMode:
    """A FlopCounterMode that counts every op, backward and double backward included."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


def gemm_gflops(device: torch.device, size: int = GEMM_SIZE) -> float:
    """The best FLOP rate of ``GEMM_REPEATS`` float32 ``size`` x ``size`` matmuls, in GFLOP/s."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    a @ b  # warm-up: BLAS thread pools and kernels
    best = float("inf")
    for _ in range(GEMM_REPEATS):
        start = time.perf_counter()
        (a @ b).sum().item()  # .item() waits for the device
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def measure(
    strategy: str,
    arch: str,
    width: int,
    batch: int,
    iters: int,
    warmup: int,
    dataset: str,
    device: torch.device,
) -> dict:
    """One speed measurement; see the module docstring for the fields."""
    config = gans.TrainConfig(
        strategy=strategy,
        dataset=dataset,
        arch=arch,
        width=width,
        batch_size=batch,
        gen_iters=warmup + 1 + iters,
        log_every=iters,
        heldout_every=warmup + 1 + iters,
    )
    trainer = gans.Trainer(config, device=device, progress=False)
    trainer.train(until=warmup)
    with count_flops() as counter:
        trainer.train(until=warmup + 1)
    flops = counter.get_total_flops()
    gemm = gemm_gflops(device)
    start = time.perf_counter()
    trainer.train(until=warmup + 1 + iters)
    seconds = time.perf_counter() - start  # train() copies the curves to the host at its end
    rate = iters / seconds
    return {
        "strategy": strategy,
        "arch": arch,
        "width": width,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "gen_iters_per_s": rate,
        "critic_steps_per_s": rate * trainer.hparams.n_critic,
        "flops_per_gen_iter": flops,
        "achieved_gflops": flops * rate / 1e9,
        "gemm_gflops": gemm,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--strategy", required=True)
    p.add_argument("--arch", default="dcgan28")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--plugin", action="append", default=[])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        for plugin in args.plugin:
            gans.load_plugin(plugin)
        for name in ("iters", "warmup", "width", "batch"):
            if getattr(args, name) < (0 if name == "warmup" else 1):
                raise gans.ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.threads is not None:
            if args.threads < 1:
                raise gans.ConfigError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        result = measure(
            args.strategy,
            args.arch,
            args.width,
            args.batch,
            args.iters,
            args.warmup,
            args.dataset,
            torch.device(args.device),
        )
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:20s} {value:.4g}" if isinstance(value, float) else f"{key:20s} {value}")
        print(f"{'achieved / gemm':20s} {result['achieved_gflops'] / result['gemm_gflops']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
