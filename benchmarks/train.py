"""Train one or more loss strategies on one dataset and print what they reached.

    python -m benchmarks.train --strategies gan,wgan,wgan-gp --dataset mnist-5k --gen-iters 200

Each run is then evaluated on the held-out split (FID/IS/KID/precision/recall with the
dataset's own classifier for images, exact W1 and mode coverage for toy points) and writes its
curves and metrics (CSV), a sample grid (image datasets) and a final checkpoint under ``--out``.
Bad input exits with status 2 and one line saying what is accepted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

import gans
from gans.metrics import FID, HIGH_QUALITY, IS, KID, MODES_COVERED, PRECISION, RECALL, W1

# Metrics in the printed summary; metrics.csv has every row with its provenance.
SHOWN = (FID, IS, KID, PRECISION, RECALL, W1, MODES_COVERED, HIGH_QUALITY)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--strategies",
        default="gan,wgan,wgan-gp",
        help="comma-separated loss strategies (default: all three built-ins)",
    )
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument(
        "--arch",
        default=None,
        help="architecture (default: dcgan28 for 28x28 images, dcgan32 for 32x32, "
        "mlp for toy points)",
    )
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gen-iters", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--n-eval",
        type=int,
        default=1000,
        help="generated samples per evaluation (default 1000: all of mnist-5k's held-out digits)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/train"))
    return parser.parse_args(argv)


def default_arch(data: gans.Dataset) -> str:
    """The first registered architecture that accepts the data's sample shape, in paper order."""
    for name in ("dcgan28", "dcgan32", "mlp", *gans.ARCHITECTURES.names()):
        if gans.ARCHITECTURES.get(name).accepts(data.sample_shape):
            return name
    raise gans.ConfigError(
        f"no registered architecture models samples of shape {data.sample_shape}"
    )


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        for strategy in strategies:
            gans.STRATEGIES.get(strategy)
        data = gans.load_dataset(args.dataset, root=args.data_root, device=device)
        configs = [
            gans.TrainConfig(
                strategy=strategy,
                dataset=args.dataset,
                arch=args.arch or default_arch(data),
                width=args.width,
                batch_size=args.batch_size,
                gen_iters=args.gen_iters,
                seed=args.seed,
            )
            for strategy in strategies
        ]
    except (ValueError, RuntimeError) as error:  # ConfigError, RegistryError, DatasetUnavailable
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = []
    for config in configs:
        trainer = gans.Trainer(config, device=device, data=data)
        status = trainer.train()
        run_dir = args.out / f"{config.dataset.replace(':', '-')}-{config.strategy}-s{config.seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        curves = pd.DataFrame(trainer.curves)
        curves.to_csv(run_dir / "curves.csv", index=False)
        trainer.save_checkpoint(run_dir / "checkpoint.pt")
        if data.kind == "image":
            trainer.save_samples(run_dir / "samples.png")
        metrics = pd.DataFrame([row.as_dict() for row in gans.evaluate(trainer, args.n_eval)])
        metrics.to_csv(run_dir / "metrics.csv", index=False)
        summary.append(
            {
                "strategy": config.strategy,
                "status": status,
                "gen_iters": trainer.gen_iter,
                "ms_per_gen_iter": 1000 * trainer.elapsed_s / max(trainer.gen_iter, 1),
                **{m: v for m, v in zip(metrics["metric"], metrics["value"]) if m in SHOWN},
            }
        )
    print(pd.DataFrame(summary).to_string(index=False, float_format="%.4g"))
    print(f"curves, metrics, samples and checkpoints: {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
