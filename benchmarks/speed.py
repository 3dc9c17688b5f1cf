"""Measure the training step against the machine's dense-matmul speed.

    python -m benchmarks.speed --strategy wgan-gp --width 64 --batch 64 --iters 20 --json

Trains ``--iters`` generator iterations on mnist-5k (or ``--dataset``) after a warm-up and reports
generator iterations and critic steps per second, the FLOPs of one generator iteration (counted by
torch.utils.flop_counter, double backward of the gradient penalty included), the FLOP rate that
gives, and the FLOP rate of a dense float32 matmul measured in the same process just before, so
their ratio means something on a noisy machine.

Timing runs in ``--repeats`` rounds (medians reported). ``--compare`` also times the textbook loop
of ``benchmarks/textbook.py`` on the same run, in windows alternating with the trainer's, and
reports the speedup. ``--stack 1,2,4,8`` measures stacked runs against separate ones instead,
for each strategy of a comma-separated ``--strategy`` (benchmarks/speed_stack.py).
Measured numbers and how to read them: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import gans
from benchmarks.bootstrap import bootstrap_ci
from benchmarks.speed_stack import Setting, measure_stacking, print_table
from benchmarks.textbook import TextbookLoop

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


LOOPS = ("trainer", "textbook")


def _loop_runner(
    loop: str, config: gans.TrainConfig, data: gans.Dataset, device: torch.device, compile: bool
):
    """Returns (run, n_critic): ``run(n)`` trains ``n`` more generator iterations with ``loop`` and
    returns once the device has finished them."""
    if loop == "trainer":
        trainer = gans.Trainer(config, device=device, data=data, progress=False, compile=compile)
        # train() copies the curves to the host at its end, which waits for the device
        return (lambda n: trainer.train(until=trainer.gen_iter + n)), trainer.hparams.n_critic
    textbook = TextbookLoop(config, data, device)

    def run(n: int) -> None:
        for _ in range(n):
            textbook.gen_iter()  # reads each loss with .item(), which waits for the device

    return run, textbook.hparams.n_critic


def measure(
    strategy: str,
    arch: str,
    width: int,
    batch: int,
    iters: int,
    warmup: int,
    dataset: str,
    device: torch.device,
    loops: tuple[str, ...] = ("trainer",),
    repeats: int = 1,
    compile: bool = False,
) -> dict[str, dict]:
    """Speed measurements of each of ``loops`` on the same run; see the module docstring for the
    fields. Each of ``repeats`` rounds measures the GEMM and then times every loop in turn, in
    reversed order every other round, so a machine getting faster or slower favours none of them;
    the medians are reported.

    Returns: {loop: fields}; with two loops also "speedup": the median over the rounds of the
    first loop's rate over the second's, each ratio from two windows next to each other in time,
    and "speedup_ci95": a percentile-bootstrap 95% interval of that median over the rounds (None
    with fewer than 3 rounds).
    """
    config = gans.TrainConfig(
        strategy=strategy,
        dataset=dataset,
        arch=arch,
        width=width,
        batch_size=batch,
        gen_iters=10**9,
        log_every=iters,
        heldout_every=10**9,
    )
    data = gans.load_dataset(dataset).to(device)
    runners, flops = {}, {}
    for loop in loops:
        run, n_critic = _loop_runner(loop, config, data, device, compile)
        run(warmup)
        with count_flops() as counter:
            run(1)
        runners[loop], flops[loop] = (run, n_critic), counter.get_total_flops()
    rates: dict[str, list[float]] = {loop: [] for loop in loops}
    gemms = []
    for repeat in range(repeats):
        gemms.append(gemm_gflops(device))  # the machine's speed of the moment, every round
        for loop in loops if repeat % 2 == 0 else loops[::-1]:
            run, _ = runners[loop]
            start = time.perf_counter()
            run(iters)
            rates[loop].append(iters / (time.perf_counter() - start))
    gemm = statistics.median(gemms)
    results = {}
    for loop, (_, n_critic) in runners.items():
        rate = statistics.median(rates[loop])
        results[loop] = {
            "loop": loop,
            "strategy": strategy,
            "arch": arch,
            "width": width,
            "batch": batch,
            "threads": torch.get_num_threads(),
            "device": str(device),
            "compile": compile and loop == "trainer",
            "gen_iters_per_s": rate,
            "critic_steps_per_s": rate * n_critic,
            "flops_per_gen_iter": flops[loop],
            "achieved_gflops": flops[loop] * rate / 1e9,
            "gemm_gflops": gemm,
        }
    if len(loops) == 2:
        first, second = (rates[loop] for loop in loops)
        ratios = [a / b for a, b in zip(first, second)]
        results["speedup"] = statistics.median(ratios)
        low, high = bootstrap_ci((np.array(ratios),), np.median)
        results["speedup_ci95"] = None if np.isnan(low) else [low, high]
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--strategy", required=True, help="with --stack: comma-separated")
    p.add_argument("--arch", default="dcgan28")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--plugin", action="append", default=[])
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default="trainer",
        help="the shared trainer, or the textbook loop of benchmarks/textbook.py",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="measure the trainer and the textbook loop side by side (alternating windows)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="the trainer with torch.compile (compiled during the warm-up)",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="timing rounds of --iters each; medians reported"
    )
    p.add_argument(
        "--stack",
        help="comma-separated K: member throughput of K runs stacked against K separate runs, "
        "scheduled on --workers as the runner does",
    )
    p.add_argument(
        "--workers", type=int, help="with --stack: worker processes (default: as --workers auto)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.stack is not None:
        return _stack_main(args)
    try:
        for plugin in args.plugin:
            gans.load_plugin(plugin)
        for name in ("iters", "warmup", "width", "batch", "repeats"):
            if getattr(args, name) < (0 if name == "warmup" else 1):
                raise gans.ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.threads is not None:
            if args.threads < 1:
                raise gans.ConfigError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        results = measure(
            args.strategy,
            args.arch,
            args.width,
            args.batch,
            args.iters,
            args.warmup,
            args.dataset,
            torch.device(args.device),
            loops=LOOPS if args.compare else (args.loop,),
            repeats=args.repeats,
            compile=args.compile,
        )
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = results if args.compare else results[args.loop]
    if args.json:
        print(json.dumps(output))
        return 0
    for result in (results[loop] for loop in LOOPS if loop in results):
        for key, value in result.items():
            print(f"{key:20s} {value:.4g}" if isinstance(value, float) else f"{key:20s} {value}")
        print(f"{'achieved / gemm':20s} {result['achieved_gflops'] / result['gemm_gflops']:.2f}")
    if args.compare:
        ci = results["speedup_ci95"]
        interval = f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        print(f"{'trainer / textbook':20s} {results['speedup']:.2f}{interval}")
    return 0


def _stack_main(args: argparse.Namespace) -> int:
    try:
        ks = tuple(int(k) for k in args.stack.split(","))
        if not ks or min(ks) < 1:
            raise ValueError
    except ValueError:
        print(
            f"error: --stack must be comma-separated integers >= 1, got {args.stack!r}",
            file=sys.stderr,
        )
        return 2
    rows = []
    try:
        for plugin in args.plugin:
            gans.load_plugin(plugin)
        for name in ("iters", "width", "batch", "repeats", "workers"):
            if (value := getattr(args, name)) is not None and value < 1:
                raise gans.ConfigError(f"--{name} must be >= 1, got {value}")
        for strategy in args.strategy.split(","):
            setting = Setting(strategy, args.arch, args.dataset, args.width, args.batch)
            setting.config(0)  # a bad name or value is one line here, not in a worker
            gans.load_dataset(args.dataset)
            rows += measure_stacking(
                setting, ks, args.iters, args.repeats, args.device, args.workers, args.warmup
            )
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
