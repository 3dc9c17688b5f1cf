"""Suites: small TOML files that name the grid of runs (datasets x strategies x seeds) and how
each run is trained and evaluated. ``load_suite`` validates a file completely before anything
runs; ``Suite.runs()`` expands it into ``RunSpec``s whose ids are hashes of their resolved config.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gans
from gans.metrics_image import EXTRACTORS

BUILTIN_DIR = Path(__file__).parent / "suites"
SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a file stem that is safe as a directory
# Part of every run id. Policy: any change that alters the numbers a config produces (the random
# draw order, an algorithm, a default the config does not spell out) bumps it, so that old results
# are never taken for new ones; tests/benchmarks/test_run_format.py pins the first numbers of two
# configs next to it. 3: no sub-pixel rewrites (they changed CPU image runs by rounding). 4: Adam
# trains per parameter (fused Adam rounds one flat tensor differently). 5: a run whose loss leaves
# ±divergence_limit (1e6) is diverged, and training stops at the log flush that sees it.
RUN_FORMAT = 5


class SuiteError(ValueError):
    """A suite name, file or value is invalid; the message says where and what is accepted."""


@dataclass(frozen=True)
class EvalPlan:
    """When and how a run is evaluated."""

    every: int  # generator iterations between intermediate evaluations
    intermediate_samples: int  # generated samples per intermediate evaluation (cheap: KID, FID)
    final_samples: int  # generated samples of the final evaluation (every metric)
    extractors: tuple[str, ...] = ("classifier",)  # image feature extractors of the final eval


@dataclass(frozen=True)
class RunSpec:
    """One run of a suite: everything ``execute_group`` needs, picklable for worker processes."""

    suite: str
    train: gans.TrainConfig
    eval: EvalPlan
    seconds: float | None = None  # wall-clock training budget; None: train.gen_iters decides
    # In a sweep: which sample of the sweep this run is, and the values drawn for it by name
    # (TrainConfig fields, then the strategy's hyperparameters).
    sample: int | None = None
    swept: tuple[tuple[str, Any], ...] = ()
    sweep: str = ""  # the sweep's samples, sampler seed and distributions, as text

    @functools.cached_property  # read many times per run; the spec is frozen
    def run_id(self) -> str:
        """Stable hash of the resolved config: equal configs share results, changed ones do not."""
        blob = json.dumps(self.resolved, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @functools.cached_property  # resolved once per spec: the one home of the filled-in config
    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in (strategy hyperparameters included)."""
        hparams = gans.make_strategy(self.train.strategy, self.train.hyperparameters).hparams
        train = self.train.as_dict()
        # A field added after the results of RUN_FORMAT 5 were made leaves the hash at its
        # default, so those results keep their ids (the runs table still records it).
        for name, default in _LATER_FIELDS.items():
            if train[name] == default:
                del train[name]
        resolved = {
            "format": RUN_FORMAT,
            "train": train,
            "hparams": hparams.as_dict(),
            "eval": dataclasses.asdict(self.eval),
            "seconds": self.seconds,
        }
        # A plugin has no RUN_FORMAT that its author bumps: the hash of its source stands in, so
        # that a changed plugin trains new runs instead of reusing old ones (docs/plugins.md).
        if sources := self.plugin_sources:
            resolved["plugin_code"] = {part: source["sha256"] for part, source in sources.items()}
        return resolved

    @functools.cached_property
    def plugin_sources(self) -> dict[str, dict[str, str]]:
        """The run's parts that come from plugins: provider, file and hash (gans.plugin_sources)."""
        train = self.train
        return gans.plugin_sources(train.strategy, train.hyperparameters, train.arch, train.dataset)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    strategies: tuple[str, ...]
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> its table
    eval: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sweep: Sweep | None = None
    digest: str = ""  # a hash of the suite's document: the same suite wherever its file lies

    @property
    def source(self) -> str:
        """Where the suite comes from, in words: what its results directory records (``run``
        refuses to mix two suites of one name in one directory)."""
        if self.path is None:
            return f"suite {self.name}, made by a program (no file)"
        if self.path.resolve().parent == BUILTIN_DIR.resolve():
            return f"built-in suite {self.name}"
        return f"suite file {self.path.resolve()}"

    def runs(self) -> list[RunSpec]:
        """Every (dataset, strategy, seed) of the grid, in that order; in a sweep every
        (dataset, strategy, sample, seed)."""
        samples = range(self.sweep.samples) if self.sweep else [None]
        runs = [
            self._run(dataset, strategy, seed, sample)
            for dataset in self.datasets
            for strategy in self.strategies
            for sample in samples
            for seed in self.seeds
        ]
        # Two samples that drew the same values (choices only) are one run: the first one.
        return list({spec.run_id: spec for spec in reversed(runs)}.values())[::-1]

    def _run(self, dataset: str, strategy: str, seed: int, sample: int | None = None) -> RunSpec:
        table = self.datasets[dataset]
        plan = EvalPlan(
            every=table.get("eval_every", self.eval.get("every", 1000)),
            intermediate_samples=self.eval.get("intermediate_samples", 1000),
            # 2,000: exact W1 on toy points takes about 1 s (10,000 take 5 GB and minutes).
            final_samples=self.eval.get("final_samples", 2000),
            extractors=tuple(self.eval.get("extractors", EvalPlan.extractors)),
        )
        overrides = dict(table.get("hyperparameters", {}).get(strategy, {}))
        fields = {key: table[key] for key in _TRAIN_KEYS if key in table}
        swept, sweep = (), ""
        if sample is not None:
            sweep = "; ".join(self.sweep.describe())
            drawn, hparams = self.sweep.draw(sample, strategy)
            fields.update(drawn)
            overrides.update(hparams)
            swept = (*drawn.items(), *hparams.items())
        train = gans.TrainConfig(
            strategy=strategy,
            dataset=dataset,
            seed=seed,
            hyperparameters=overrides,
            # Without a budget a suite trains 10,000 iterations (TrainConfig's 200,000 are the
            # paper's full run); with a wall-clock budget the iteration count is only a ceiling.
            # A budget in epochs leaves gen_iters to the trainer, which converts it exactly.
            gen_iters=None
            if "epochs" in table
            else table.get("gen_iters", 1_000_000 if "seconds" in table else 10_000),
            epochs=table.get("epochs"),
            # Every other key the table sets (or the sweep draws) goes to TrainConfig as is; the
            # rest keep its defaults (batch_size included: 50, gan_mnist.py's).
            **fields,
        )
        return RunSpec(self.name, train, plan, table.get("seconds"), sample, swept, sweep)


DISTRIBUTIONS = ("log-uniform", "uniform", "int-uniform", "choice")
# The TrainConfig fields a sweep may draw (the others fix what a run is, not how it is set up).
SWEEP_MAX_SAMPLES = 10**5  # a random search of 100,000 settings per strategy is already months
SWEEPABLE = ("width", "latent_dim", "depth", "critic_norm", "batch_size", "lr_decay")


@dataclass(frozen=True)
class Distribution:
    """One swept value: ``kind`` is one of DISTRIBUTIONS; ``values`` are [low, high] (both
    included for int-uniform) or the choices."""

    kind: str
    values: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        low, high = (self.values + (None,))[:2]
        if self.kind == "log-uniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "int-uniform":
            return int(rng.integers(low, high + 1))
        return copy.deepcopy(self.values[int(rng.integers(len(self.values)))])

    def text(self) -> str:
        return f"{self.kind} {list(self.values)}"


@dataclass(frozen=True)
class Sweep:
    """``samples`` settings drawn with ``seed``: TrainConfig fields shared by every strategy
    (drawn once per sample, so sample i has the same networks for each strategy) and each
    strategy's hyperparameters."""

    samples: int
    seed: int
    fields: dict[str, Distribution]
    hyperparameters: dict[str, dict[str, Distribution]]

    def draw(self, sample: int, strategy: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields and ``strategy``'s hyperparameters of sample ``sample``: the same for the
        same seed, on any machine (NumPy's PCG64 seeded by seed, sample and a CRC of the name)."""

        def drawn(scope: str, distributions: dict[str, Distribution]) -> dict[str, Any]:
            rng = np.random.default_rng([self.seed, sample, zlib.crc32(scope.encode())])
            return {name: distributions[name].draw(rng) for name in sorted(distributions)}

        return (
            drawn("fields", self.fields),
            drawn(f"hparams:{strategy}", self.hyperparameters.get(strategy, {})),
        )

    def describe(self) -> list[str]:
        """One line per swept value, for the report."""
        lines = [f"{name}: {d.text()}" for name, d in self.fields.items()]
        for strategy, distributions in self.hyperparameters.items():
            lines += [f"{strategy} {name}: {d.text()}" for name, d in distributions.items()]
        head = f"{self.samples} samples per strategy and dataset, sampler seed {self.seed}"
        return [head, *lines]


_LATER_FIELDS = {"critic_norm": "none", "epochs": None}
_TRAIN_KEYS = (
    "arch",
    "width",
    "latent_dim",
    "depth",
    "critic_norm",
    "batch_size",
    "lr_decay",
    "heldout_every",
    "divergence_limit",
    "layer_grads_every",
    "freeze_generator",
    "precision",
)
_DATASET_KEYS = {
    *_TRAIN_KEYS,
    "gen_iters",
    "epochs",
    "seconds",
    "eval_every",
    "hyperparameters",
}
# The largest [eval] counts: generator iterations as TrainConfig's (gans.trainer.MAX_COUNTS);
# samples 200 times the 50,000 of the FID literature (Heusel et al. 2017), hours on a GPU already.
EVAL_MAX = {"every": 10**9, "intermediate_samples": 10**7, "final_samples": 10**7}
_EVAL_KEYS = {*EVAL_MAX, "extractors"}
_TOP_KEYS = {
    "description",
    "seeds",
    "strategies",
    "datasets",
    "eval",
    "hyperparameters",
    "sweep",
}
_SWEEP_KEYS = {"samples", "seed", "fields", "hyperparameters"}


def builtin_suites() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by name, or a suite file by path, validated in full.

    Raises:
        SuiteError: unknown suite, unreadable or malformed file (with its line), or bad values.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if name_or_path not in builtin_suites():
            raise SuiteError(
                f"unknown suite {name_or_path!r}; built-in: {', '.join(builtin_suites())}, "
                "or give the path of a .toml suite file"
            )
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    try:
        text = path.read_bytes().decode("utf-8")  # TOML is UTF-8 (toml.io, "Spec")
    except OSError as error:
        raise SuiteError(f"cannot read suite file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise SuiteError(
            f"suite file {path} is not UTF-8 text (byte {error.start}), which TOML requires"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"suite file {path} is not valid TOML: {error}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise SuiteError(f"suite file {path} nests deeper than {MAX_NESTING} levels") from None
    return suite_from_document(path.stem, raw, path)


def suite_from_document(name: str, raw: dict[str, Any], path: Path | None = None) -> Suite:
    """A suite from the contents of a suite file (a claim's experiments are such documents),
    validated in full; ``path`` names the file in messages.

    Raises:
        SuiteError: a bad name or value.
    """
    where = f"suite file {path}" if path is not None else f"suite {name}"
    _check_values(raw, where)
    try:
        suite = _parse(name, copy.deepcopy(raw), where, path)
        digest = json.dumps(raw, sort_keys=True, default=str).encode()
        suite = dataclasses.replace(suite, digest=hashlib.sha256(digest).hexdigest()[:16])
        for spec in suite.runs():  # builds every TrainConfig ...
            _ = spec.resolved  # ... and every strategy, which validates its overrides
    except SuiteError:
        raise
    except (ValueError, TypeError) as error:  # ConfigError, RegistryError
        raise SuiteError(f"{where}: {error}") from None
    return suite


# A suite file's deepest value is an n_critic schedule's step, [datasets.X.hyperparameters.S]
# n_critic = { steps = [[0, 5]] }: six levels. Deeper is a mistake, refused before anything walks
# it recursively (copy.deepcopy, json).
MAX_NESTING = 16
INT64 = (-(2**63), 2**63 - 1)  # the tables store integers as int64


def _check_values(raw: dict[str, Any], where: str) -> None:
    """Every value of a suite document: nested at most MAX_NESTING deep, every integer an int64,
    every float finite (no key of a suite means anything by inf or nan)."""
    stack = [(raw, "", 1)]
    while stack:  # iterative: the depth is what is being checked
        value, key, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SuiteError(f"{where}: {key} nests deeper than {MAX_NESTING} levels")
        if isinstance(value, dict):
            stack += [(v, f"{key}.{k}" if key else str(k), depth + 1) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(v, f"{key}[{i}]", depth + 1) for i, v in enumerate(value)]
        elif _is_int(value) and not INT64[0] <= value <= INT64[1]:
            raise SuiteError(
                f"{where}: {key} = {value} is beyond the 64-bit integers the tables store"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise SuiteError(f"{where}: {key} = {value}: give a finite number")


def _parse(name: str, raw: dict[str, Any], where: str, path: Path | None) -> Suite:
    _only(raw, _TOP_KEYS, where)
    if not SUITE_NAME.fullmatch(name):
        raise SuiteError(
            f"{where}: the suite's name, {name!r} (a file's name without .toml), names its "
            "results directory: use letters, digits, '-' and '_' (e.g. my-suite.toml)"
        )
    seeds = raw.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(_is_int(s) and s >= 0 for s in seeds)):
        raise SuiteError(f"{where}: seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    strategies = raw.get("strategies", ["gan", "wgan", "wgan-gp"])
    if not (isinstance(strategies, list) and strategies):
        raise SuiteError(f"{where}: strategies must be a non-empty list of names")
    for key, values in (("seeds", seeds), ("strategies", strategies)):
        if repeated := sorted({str(v) for v in values if values.count(v) > 1}):
            raise SuiteError(f"{where}: {key} lists {', '.join(repeated)} more than once")
    datasets = raw.get("datasets")
    if not (isinstance(datasets, dict) and datasets):
        raise SuiteError(f"{where}: needs at least one [datasets.NAME] table")
    for dataset, table in datasets.items():
        _only(table, _DATASET_KEYS, f"{where}, [datasets.{dataset}]")
        gans.DATASETS.get(dataset.partition(":")[0])
        if "arch" not in table:
            raise SuiteError(f"{where}, [datasets.{dataset}]: arch is required")
        if "seconds" in table and not (_is_number(table["seconds"]) and table["seconds"] > 0):
            raise SuiteError(f"{where}, [datasets.{dataset}]: seconds must be a number > 0")
        if "epochs" in table and (others := [k for k in ("gen_iters", "seconds") if k in table]):
            raise SuiteError(
                f"{where}, [datasets.{dataset}]: epochs and {' and '.join(others)} are both "
                "budgets; give one"
            )
        if "seconds" in table and table.get("lr_decay"):
            raise SuiteError(
                f"{where}, [datasets.{dataset}]: lr_decay needs a budget in gen_iters, not seconds "
                "(it decays to 0 at the last generator iteration, which a time budget leaves open)"
            )
        if "eval_every" in table and not (
            _is_int(table["eval_every"]) and 1 <= table["eval_every"] <= EVAL_MAX["every"]
        ):
            raise SuiteError(
                f"{where}, [datasets.{dataset}]: eval_every must be an integer from 1 to "
                f"{EVAL_MAX['every']:,}"
            )
    evaluation = raw.get("eval", {})
    _only(evaluation, _EVAL_KEYS, f"{where}, [eval]")
    for key, most in EVAL_MAX.items():
        if key in evaluation and not (_is_int(evaluation[key]) and 1 <= evaluation[key] <= most):
            raise SuiteError(f"{where}, [eval]: {key} must be an integer from 1 to {most:,}")
    unknown = set(evaluation.get("extractors", ())) - set(EXTRACTORS)
    if unknown:
        raise SuiteError(f"{where}, [eval]: extractors must be among {', '.join(EXTRACTORS)}")
    _overrides_tables(raw.get("hyperparameters", {}), f"{where}, [hyperparameters]")
    for dataset, table in datasets.items():
        _overrides_tables(
            table.get("hyperparameters", {}), f"{where}, [datasets.{dataset}.hyperparameters]"
        )
    # Strategy-wide overrides apply on every dataset; a dataset's own overrides win.
    for table in datasets.values():
        merged = {s: dict(o) for s, o in raw.get("hyperparameters", {}).items()}
        for strategy, overrides in table.get("hyperparameters", {}).items():
            merged.setdefault(strategy, {}).update(overrides)
        table["hyperparameters"] = merged
        stray = sorted(set(merged) - set(strategies))
        if stray:
            raise SuiteError(
                f"{where}: hyperparameters for {', '.join(stray)}, which the suite "
                f"does not run; strategies: {', '.join(strategies)}"
            )
    sweep = _sweep(raw["sweep"], strategies, f"{where}, [sweep]") if "sweep" in raw else None
    return Suite(
        name,
        raw.get("description", ""),
        tuple(seeds),
        tuple(strategies),
        datasets,
        evaluation,
        path,
        sweep,
    )


def _sweep(raw: Any, strategies: list[str], where: str) -> Sweep:
    _only(raw, _SWEEP_KEYS, where)
    # (the seed's upper bound is _check_values's int64)
    for key, low, high in (("samples", 1, SWEEP_MAX_SAMPLES), ("seed", 0, INT64[1])):
        if not (_is_int(raw.get(key)) and low <= raw[key] <= high):
            raise SuiteError(
                f"{where}: {key} must be an integer from {low} to {high:,}, got {raw.get(key)!r}"
            )
    fields = raw.get("fields", {})
    _only(fields, set(SWEEPABLE), f"{where}.fields")
    hyperparameters = raw.get("hyperparameters", {})
    _overrides_tables(hyperparameters, f"{where}.hyperparameters")
    if stray := sorted(set(hyperparameters) - set(strategies)):
        raise SuiteError(
            f"{where}.hyperparameters: {', '.join(stray)} is not among the suite's strategies "
            f"({', '.join(strategies)})"
        )
    if not fields and not any(hyperparameters.values()):
        raise SuiteError(f"{where}: sweeps nothing; give [sweep.fields] or [sweep.hyperparameters]")
    return Sweep(
        raw["samples"],
        raw["seed"],
        {name: _distribution(d, f"{where}.fields.{name}") for name, d in fields.items()},
        {
            strategy: {
                name: _distribution(d, f"{where}.hyperparameters.{strategy}.{name}")
                for name, d in values.items()
            }
            for strategy, values in hyperparameters.items()
        },
    )


def _distribution(raw: Any, where: str) -> Distribution:
    example = "e.g. { log-uniform = [1e-5, 1e-3] } or { choice = [32, 64] }"
    if not (isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in DISTRIBUTIONS):
        raise SuiteError(
            f"{where}: expected one of {', '.join(DISTRIBUTIONS)} with its values ({example}), "
            f"got {raw!r}"
        )
    ((kind, values),) = raw.items()
    if not (isinstance(values, list) and values):
        raise SuiteError(f"{where}: {kind} needs a non-empty list, got {values!r}")
    if kind == "choice":
        return Distribution(kind, tuple(values))
    number = _is_int if kind == "int-uniform" else _is_number
    if not (len(values) == 2 and all(number(v) for v in values)):
        what = "integers" if kind == "int-uniform" else "numbers"
        raise SuiteError(f"{where}: {kind} needs [low, high], two {what}, got {values!r}")
    low, high = values
    if low > high:
        raise SuiteError(f"{where}: {kind} has low {low} > high {high}")
    if kind == "log-uniform" and low <= 0:
        raise SuiteError(f"{where}: log-uniform needs bounds > 0, got {values!r}")
    return Distribution(kind, (low, high))


def _overrides_tables(overrides: Any, where: str) -> None:
    """``overrides`` maps strategy names to tables of hyperparameter values."""
    example = "e.g. gan = { lr = 1e-4 }"
    if not isinstance(overrides, dict):
        raise SuiteError(f"{where}: expected a table of strategies' values ({example})")
    for strategy, values in overrides.items():
        if not isinstance(values, dict):
            raise SuiteError(
                f"{where}: {strategy} must be a table of hyperparameter values ({example}), "
                f"got {values!r}"
            )


def _only(table: Any, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise SuiteError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(
            f"{where}: unknown key {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
