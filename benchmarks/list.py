"""List what a suite can name: loss strategies, datasets, architectures, metrics and suites; and
the claims that ``benchmarks.claims`` checks.

    python -m benchmarks.list [--plugin MODULE_OR_FILE ...]

Exit status: 0, or 2 when a plugin cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

import gans
from benchmarks import claims_builtin, claims_training  # noqa: F401  (register the built-ins)
from benchmarks.claim import CLAIMS
from benchmarks.suites import builtin_suites, load_suite
from gans import metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.list",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module or .py file registering loss strategies (repeatable)",
    )
    return p.parse_args(argv)


def _section(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [title]
    for name, text in rows:
        # Continuation lines of a multi-line text line up under its first line.
        indent = "\n  " + " " * (width + 2)
        lines.append(f"  {name:<{width}}  {text.replace(chr(10), indent)}")
    return "\n".join(lines)


def _strategy(name: str) -> str:
    pieces = gans.make_strategy(name).pieces()
    hparams = gans.default_hyperparameters(name)
    return (
        " + ".join(f"{kind} {piece}" for kind, piece in pieces.items() if piece)
        + f"  (from {gans.STRATEGIES.provider(name)})\n"
        + " ".join(f"{key}={value}" for key, value in hparams.items() if value is not None)
    )


def _suite_summary(name: str) -> str:
    # Descriptions are paragraphs wrapped in the TOML file: show their first sentence, shortened.
    sentence = " ".join(load_suite(name).description.split()).split(". ")[0]
    return textwrap.shorten(sentence, 84, placeholder=" ...") or "(no description)"


def _claim(name: str) -> str:
    claim = CLAIMS.get(name)
    return f"{textwrap.shorten(claim.statement, 84, placeholder=' ...')}\n{claim.source}"


def listing() -> str:
    """Everything registered, as readable text."""
    offline = gans.data.OFFLINE_DATASETS
    architectures = [(name, gans.ARCHITECTURES.get(name)) for name in gans.ARCHITECTURES]
    sections = [
        _section("Loss strategies", [(name, _strategy(name)) for name in gans.STRATEGIES]),
        _section(
            "Datasets",
            [
                (name, "offline" if name in offline else "needs a download (--data-root)")
                for name in gans.DATASETS
            ],
        ),
        _section(
            "Architectures",
            [
                (name, f"{a.description}; width {a.default_width}, latent {a.default_latent_dim}")
                for name, a in architectures
            ],
        ),
        _section("Metrics", list(metrics.DESCRIPTIONS.items())),
        _section("Suites", [(name, _suite_summary(name)) for name in builtin_suites()]),
        _section("Claims (python -m benchmarks.claims)", [(n, _claim(n)) for n in CLAIMS]),
    ]
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for plugin in args.plugin:
            gans.load_plugin(plugin)
    except gans.RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(listing())
    return 0


if __name__ == "__main__":
    sys.exit(main())
