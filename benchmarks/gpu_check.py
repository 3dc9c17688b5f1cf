"""The prepared GPU check: one command that tells, in a few minutes on a lent GPU, whether the
GPU paths work and how fast they are.

    python -m benchmarks.gpu_check --out results/gpu-check            # on the GPU (size gpu)
    python -m benchmarks.gpu_check --out results/gpu-check --device cpu   # CI-sized, on the CPU

It writes DIR/summary.json and DIR/gpu_check.log, in this order (the correctness checks first, so
that a check cut short by its deadline still has them):

1. a tiny suite (mnist-5k and 8gaussians, every strategy, two seeds, stacked) run end to end with
   ``--device`` into ``--work`` (a temporary directory unless given), report included: every run
   done, its curves finite, its tables complete;
2. the gradient penalty's parameter gradients under ``torch.compile`` against eager ones, on the
   dcgan28 critic;
3. for each strategy on mnist-5k (dcgan28, width 64 at size gpu): generator iterations per second
   per run, in fp32 and bf16, eager and compiled, separate (one run) and stacked (K runs as one
   model, K = 1, 4, 8, 16), as member iterations per second.

A timing that fails is recorded with its error and the check goes on; once ``--minutes`` have
passed, the timings left are recorded as skipped. The exit status is 0 when the correctness
checks pass, 1 when one fails, 2 for bad input. Where its numbers go: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

import gans
from benchmarks.speed_stack import SEPARATE, STACKED, Members, Setting


@dataclass(frozen=True)
class Size:
    width: int
    batch: int
    ks: tuple[int, ...]
    precisions: tuple[str, ...]
    compile: tuple[bool, ...]  # compiled timings: slow to compile, so only where worth it
    iters: int
    warmup: int
    suite_iters: int
    suite_width: int


SIZES = {
    # One GPU, within 8 minutes: batch 50 is gan_mnist.py's.
    "gpu": Size(64, 50, (1, 4, 8, 16), ("fp32", "bf16"), (False, True), 20, 3, 40, 16),
    # The CPU form CI runs: every path once, at sizes that take seconds.
    "ci": Size(8, 16, (1, 2), ("fp32",), (False,), 2, 1, 4, 4),
}
STRATEGIES = ("gan", "wgan", "wgan-gp")

log = logging.getLogger("gpu_check")


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="where summary.json and the log go")
    p.add_argument(
        "--work",
        type=Path,
        help="where the tiny suite's results and report go (default: a new temporary directory), "
        "so that --out holds the two files only",
    )
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--size", choices=SIZES, help="gpu or ci (default: gpu on CUDA, ci on the CPU)")
    p.add_argument(
        "--minutes",
        type=float,
        default=6.0,
        help="no timing starts after this many minutes from the start (default 6: one under way, "
        "a compilation at worst, ends within 8)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        device = None
    if (
        device is None
        or device.type not in ("cpu", "cuda")
        or (device.type == "cuda" and not torch.cuda.is_available())
    ):
        print(f"error: --device {args.device}: no such device here (cuda or cpu)", file=sys.stderr)
        return 2
    if not args.minutes > 0:
        print(f"error: --minutes must be > 0, got {args.minutes}", file=sys.stderr)
        return 2
    size = SIZES[args.size or ("gpu" if device.type == "cuda" else "ci")]
    args.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(args.out / "gpu_check.log", mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.setLevel(logging.INFO)
    deadline = time.monotonic() + 60 * args.minutes
    summary = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "size": args.size or ("gpu" if device.type == "cuda" else "ci"),
        "settings": size.__dict__,
    }
    log.info("gpu check on %s, torch %s, size %s", summary["device"], torch.__version__, size)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    summary["work"] = str(work)
    summary["suite"] = _check(lambda: suite_check(work, str(device), size))
    summary["compiled_penalty"] = _check(lambda: compiled_penalty_check(str(device), size))
    summary["timings"] = timings(str(device), size, deadline)
    summary["passed"] = all(summary[c].get("passed") for c in ("suite", "compiled_penalty"))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("summary: %s; passed: %s", args.out / "summary.json", summary["passed"])
    return 0 if summary["passed"] else 1


def _check(check) -> dict:
    """Run ``check``; an exception is a failed check with its traceback in the log."""
    try:
        result = check()
    except Exception as error:
        log.info("%s", traceback.format_exc())
        result = {"passed": False, "error": f"{type(error).__name__}: {error}"}
    log.info("%s", json.dumps(result, default=str))
    return result


def suite_check(work: Path, device: str, size: Size) -> dict:
    """The tiny suite end to end in a child process (as a user runs it), then its tables read;
    its results and report go into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    suite = work / "gpu-tiny.toml"
    suite.write_text(
        textwrap.dedent(
            f"""
            description = "The GPU check's end-to-end suite: every path once, tiny budgets."
            seeds = [0, 1]
            strategies = ["gan", "wgan", "wgan-gp"]

            [eval]
            intermediate_samples = 200
            final_samples = 500
            extractors = ["classifier"]

            [datasets.mnist-5k]
            arch = "dcgan28"
            width = {size.suite_width}
            batch_size = 32
            gen_iters = {size.suite_iters}
            eval_every = {size.suite_iters // 2}

            [datasets.8gaussians]
            arch = "mlp"
            width = 32
            batch_size = 128
            gen_iters = {size.suite_iters * 5}
            eval_every = {size.suite_iters * 5 // 2}
            """
        )
    )
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--suite",
        str(suite),
        "--out",
        str(work / "results"),
        "--reports",
        str(work / "report"),
        "--device",
        device,
        "--stack",
        "2",
        "--fresh",
    ]
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    log.info("%s", done.stdout[-4000:] + done.stderr[-4000:])
    suite_dir = work / "results" / "gpu-tiny"
    runs = pd.read_parquet(suite_dir / "runs.parquet")
    curves = pd.read_parquet(suite_dir / "curves.parquet")
    watched = curves[["critic_loss", "g_loss"]].to_numpy()
    problems = []
    if done.returncode != 0:
        problems.append(f"benchmarks.run exited with {done.returncode}")
    if len(runs) != 12 or not (runs.status == "done").all():
        problems.append(f"runs: {runs.status.value_counts().to_dict()} of 12 expected done")
    if not bool(torch.isfinite(torch.tensor(watched)).all()):
        problems.append("non-finite critic or generator losses in the curves")
    if set(curves.run_id) != set(runs.run_id):
        problems.append("curves missing for some runs")
    for column in ("w1", "fid"):
        if runs[column].isna().all():
            problems.append(f"no final {column}")
    if not (work / "report" / "README.md").exists():
        problems.append("no report")
    return {
        "passed": not problems,
        "problems": problems,
        "exit_status": done.returncode,
        "runs": len(runs),
        "stacked": sorted(int(k) for k in runs["stack"].unique()),
        "final": runs[["dataset", "strategy", "seed", "w1", "fid"]].to_dict("records"),
    }


def compiled_penalty_check(device: str, size: Size) -> dict:
    """Parameter gradients of the critic loss plus the gradient penalty, eager and compiled."""
    config = gans.TrainConfig(
        strategy="wgan-gp", width=size.width, batch_size=size.batch, gen_iters=1
    )
    eager, compiled = (
        gans.Trainer(config, device=device, progress=False, compile=c) for c in (False, True)
    )
    grads = []
    for trainer in (eager, compiled):
        real = trainer.data.batch(size.batch, torch.Generator(device).manual_seed(1))
        fake = trainer._generated(size.batch)
        trainer.rng.manual_seed(2)  # the same interpolates
        _, total, _, _ = trainer._critic_objective(real, fake)
        trainer.critic.zero_grad()
        total.backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.critic.parameters()]))
    scale = grads[0].abs().max().item()
    difference = (grads[1] - grads[0]).abs().max().item()
    return {
        "passed": bool(math.isfinite(difference) and difference <= 1e-3 * scale),
        "max_abs_difference": difference,
        "max_abs_gradient": scale,
        "tolerance": "1e-3 x the largest gradient (TF32 and fusion round differently)",
    }


def timings(device: str, size: Size, deadline: float) -> list[dict]:
    """Member generator iterations per second of every setting, until the deadline."""
    rows = []
    data = gans.load_dataset("mnist-5k").to(device, torch.channels_last)
    plan = [
        (strategy, precision, compile, mode, k)
        for compile in size.compile
        for precision in size.precisions
        for strategy in STRATEGIES
        for mode, k in [(SEPARATE, 1)] + [(STACKED, k) for k in size.ks]
    ]
    for strategy, precision, compile, mode, k in plan:
        row = {"strategy": strategy, "precision": precision, "compile": compile, "mode": mode}
        row["k"] = k
        if time.monotonic() > deadline:
            rows.append({**row, "skipped": "past the deadline"})
            continue
        setting = Setting(
            strategy, "dcgan28", "mnist-5k", size.width, size.batch, precision, compile
        )
        try:
            members = Members(setting, k, mode, data, device)
            members.train(size.warmup)
            start = time.perf_counter()
            members.train(size.iters)
            rate = k * size.iters / (time.perf_counter() - start)
            row["member_gen_iters_per_s"] = rate
        except Exception as error:
            row["error"] = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        finally:
            members = None
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        log.info("%s", json.dumps(row))
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(main())
