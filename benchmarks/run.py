"""Run a suite: every (dataset, strategy, seed) run, then the tables (and the report).

    python -m benchmarks.run --suite quick

Exit status: 0 when every run finished (a diverged run is a finished run), 1 when a run failed
with an error (the others still ran and are kept), the report could not be written or the
environment failed (a full disk: one line), 2 for bad input (nothing was started), 130 or 143
when stopped by SIGINT or SIGTERM (``stops_cleanly``).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import functools
import importlib.util
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

import gans
from benchmarks.execute import failed_row, reference_rows, warn
from benchmarks.executors import (
    cpu_cores,
    group_runs,
    run_in_process,
    run_in_workers,
    run_on_ray,
    threads_per_worker,
)
from benchmarks.provenance import (
    ENVIRONMENT_FILE,
    NOT_RECORDED,
    RESUMED_JOIN,
    code_of,
    code_version,
    environment,
    trained_here,
)
from benchmarks.store import (
    DONE_MARKER,
    FAILED,
    INCEPTION_SUFFIX,
    REFERENCES_TABLE,
    SUITE_LOCK,
    collect_tables,
    locked,
    read_done,
    remove_stale_temporaries,
    with_columns,
    write_json,
    write_table,
)
from benchmarks.suites import Suite, SuiteError, load_suite
from gans.metrics_image import INCEPTION

OFFLINE_SUITE = "quick"


class InputError(Exception):
    """Bad input: reported in one line, exit status 2."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--suite", required=True, help="built-in suite name or path of a .toml file")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root (results/)")
    p.add_argument("--seeds", help="comma-separated subset of the suite's seeds")
    p.add_argument("--strategies", help="comma-separated subset of the suite's strategies")
    p.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    add_run_options(p)
    p.add_argument("--no-report", action="store_true", help="do not write the report")
    p.add_argument("--reports", type=Path, help="report directory (default: reports/<suite>)")
    return p.parse_args(argv)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """How runs train and where they run: the options of every command that runs suites."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--precision",
        choices=gans.PRECISIONS,
        help="train every run at this precision instead of the suite's (bf16: autocast, for "
        "GPUs; fp64: the same runs in float64, a reference for float32's rounding)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the training steps (for GPUs)"
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="CUDA: deterministic kernels, no cuDNN autotuning (the CPU always is deterministic)",
    )
    p.add_argument(
        "--no-speedups",
        action="store_true",
        help="train the networks of gans/models.py as they are, without the rewrites that leave "
        "the numbers the same (gans/speedups.py); each run records which it trained with",
    )
    p.add_argument("--data-root", help=f"where image datasets live (${gans.data.DATA_ROOT_ENV})")
    p.add_argument("--inception-weights", help="torch-fidelity Inception weights file")
    p.add_argument(
        "--classifier-weights",
        help="digit classifier weights written by python -m gans.train_classifier, used instead "
        "of the shipped (mnist-5k) or locally trained classifier; rows name it by its weights",
    )
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument(
        "--workers",
        default="auto",
        help="local worker processes, or auto: one per GPU, or on the CPU one single-threaded "
        "process per core (measured fastest here: docs/performance.md)",
    )
    p.add_argument(
        "--stack",
        default="auto",
        help="train up to K runs that differ only in seed as one batched model (1: each run "
        "alone), or auto: up to 16 on a GPU; on the CPU groups of 8 for the mlp up to width 64, "
        "else each run alone, as measured fastest (docs/performance.md)",
    )
    p.add_argument("--ray-address", help="join a Ray cluster (auto or HOST:PORT)")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module or .py file registering loss strategies (repeatable)",
    )
    p.add_argument("--fresh", action="store_true", help="delete the selected runs and start over")
    p.add_argument(
        "--fresh-if-code-changed",
        action="store_true",
        help="delete the selected runs that other code (another commit, or other uncommitted "
        "changes) trained, finished or not, and train them again",
    )
    p.add_argument("--tensorboard", type=Path, help="also write TensorBoard scalars here")


def _workers(option: str, device: str, runs: int) -> int:
    """The number of worker processes: ``option`` as given, or for "auto" one per GPU, or on the
    CPU one per core (each single-threaded); never more than there are runs (groups), nor on the
    CPU than there are cores (one line says so): each worker is a process with its own copy of
    torch and the data (about 0.9 GB), and more than one per core only share the cores. More
    than one per GPU is allowed, with one line."""
    workers = _auto_or_count(option, "--workers")
    on_gpu = torch.device(device).type == "cuda"
    if workers is None:
        workers = max(1, torch.cuda.device_count() if on_gpu else cpu_cores())
    elif workers > cpu_cores() and not on_gpu:
        warn(f"--workers {workers}: capped at {cpu_cores()}, the CPU cores this process may use")
        workers = cpu_cores()
    elif on_gpu and workers > (gpus := torch.cuda.device_count()):
        # Not capped: small networks leave a GPU idle between kernels, which another run fills.
        warn(f"--workers {workers} on {gpus} GPU{'s' * (gpus > 1)}: workers share the GPUs")
    return max(1, min(workers, runs))


def _auto_or_count(option: str, name: str) -> int | None:
    """None for "auto", else ``option`` as an integer >= 1. Raises: InputError naming ``name``."""
    if option == "auto":
        return None
    try:
        count = int(option)
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(f"{name} must be auto or an integer >= 1, got {option!r}")
    return count


def _subset(option: str | None, available: tuple, what: str, convert=str) -> tuple:
    if option is None:
        return available
    try:
        chosen = tuple(convert(item.strip()) for item in option.split(",") if item.strip())
    except ValueError:
        raise InputError(f"--{what} must be comma-separated values, got {option!r}") from None
    if not chosen:
        raise InputError(
            f"--{what}: no value given; the suite has {', '.join(map(str, available))}"
        )
    if repeated := sorted({str(c) for c in chosen if chosen.count(c) > 1}):
        raise InputError(f"--{what}: {', '.join(repeated)} given more than once")
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise InputError(
            f"--{what}: {', '.join(map(str, unknown))} not in the suite;"
            f" it has {', '.join(map(str, available))}"
        )
    return chosen


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return str(device)


def _load_datasets(names: tuple[str, ...], data_root) -> dict[str, gans.Dataset]:
    """Load every dataset once up front: a missing one stops the suite before any run starts."""
    datasets = {}
    for name in names:
        try:
            datasets[name] = gans.load_dataset(name, root=data_root)
        except gans.DatasetUnavailable as error:
            raise InputError(f"{error}; the {OFFLINE_SUITE!r} suite runs offline") from None
        except ValueError as error:  # a class the dataset does not have, or none to select
            raise InputError(f"[datasets.{name}]: {error}") from None
    return datasets


def _preflight(specs, datasets: dict[str, gans.Dataset]) -> None:
    """Build each (dataset, strategy) pair's networks and run its loss and penalty on them once,
    on the CPU, so that an architecture that cannot model the data, or a loss that returns a
    non-scalar or non-finite value, stops the suite before any run starts. Any other error is
    left to the run, which records it (error.log) as a failed run."""
    for spec in {(s.train.dataset, s.train.strategy): s for s in specs}.values():
        where = f"[datasets.{spec.train.dataset}] {spec.train.strategy}"
        try:
            trainer = gans.Trainer(spec.train, data=datasets[spec.train.dataset], progress=False)
            trainer.check_strategy()
        except ValueError as error:  # StrategyError and ConfigError are ValueErrors
            raise InputError(f"{where}: {error}") from None
        except Exception:  # the run fails with this error and records its traceback
            continue


def _check_classifier_weights(path: str, datasets: dict[str, gans.Dataset]) -> None:
    """Refuse a --classifier-weights file that cannot be read or does not fit an image dataset."""
    if not Path(path).is_file():
        raise InputError(f"--classifier-weights: no file {path}")
    for data in datasets.values():
        if data.kind == "image":
            try:
                gans.classifier_extractor(data, weights=path)
            except ValueError as error:  # ClassifierWeightsError included
                raise InputError(f"--classifier-weights: {error}") from None


SUITE_RECORD = "suite.json"  # which suite a results directory holds: Suite.source


def _check_same_suite(suite_dir: Path, suite: Suite) -> None:
    """Refuse a results directory that holds the runs of another suite of the same name: from
    another file, with other contents (its tables would replace that suite's). The same file
    edited, or the same contents from another place (a moved project, another clone), are the
    same suite. A directory without the record (made before it was kept) is taken as this
    suite's."""
    try:
        record = json.loads((suite_dir / SUITE_RECORD).read_text())
        source, digest = record["source"], record.get("digest")
    except (OSError, ValueError, KeyError, TypeError):
        return
    if source != suite.source and digest != suite.digest:
        raise InputError(
            f"--out: {suite_dir} holds the runs of {source}, not of {suite.source} (whose "
            f"contents differ); give another --out (if it is that suite moved and edited, "
            f"delete {suite_dir / SUITE_RECORD})"
        )


def check_writable(directory: Path, option: str) -> None:
    """Refuse a directory that cannot be created or written in, creating nothing."""
    existing = directory.absolute()
    while not existing.exists():  # a path under a regular file does not exist either
        existing = existing.parent
    if not existing.is_dir():
        problem = errno.ENOTDIR
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = errno.EACCES
    else:
        return
    raise InputError(f"{option}: cannot write to {directory}: {os.strerror(problem)}")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread as SIGINT raises KeyboardInterrupt."""


def stops_cleanly(command):
    """``command`` (a ``main``) stopped by SIGINT or SIGTERM: whatever it was doing unwinds (its
    workers stopped, the tables of finished runs written, locks released), then one line says how
    to resume, and the exit status is 128 + the signal's number (130, 143), as a shell's. An
    error of the environment (an OSError: a full disk, a file it may not write) is one line
    too, exit status 1."""

    def terminate(signum, frame):
        raise Terminated

    @functools.wraps(command)
    def stoppable(argv: list[str] | None = None) -> int:
        main_thread = threading.current_thread() is threading.main_thread()  # signals reach it
        before = signal.signal(signal.SIGTERM, terminate) if main_thread else None
        try:
            return command(argv)
        except (KeyboardInterrupt, Terminated) as stop:
            name = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
            print(
                f"stopped by {name.name}: finished runs are kept in the tables; run the same "
                "command again to resume the others from their last checkpoints",
                file=sys.stderr,
            )
            return 128 + name.value
        except OSError as error:  # a full disk, a read-only table, another user's lock file
            file = error.filename2 or error.filename  # a rename's target, else the file
            where = f"{file}: " if file else ""
            print(
                f"error: {where}{error.strerror or error}; the runs finished so far are kept: "
                "remove the cause and run the same command again",
                file=sys.stderr,
            )
            return 1
        finally:
            if before is not None:  # a caller in the same process keeps its own handling
                signal.signal(signal.SIGTERM, before)

    return stoppable


@stops_cleanly
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        for plugin in args.plugin:
            gans.load_plugin(plugin)
        suite = load_suite(args.suite)
    except (InputError, SuiteError, gans.RegistryError, gans.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_suite(suite, args)


@dataclasses.dataclass
class SuitePlan:
    """A suite's invocation, checked: what ``plan_suite`` found, what ``run_plan`` runs."""

    suite: Suite
    suite_specs: list  # every run of the suite (the tables hold those finished)
    specs: list  # the runs selected this time
    groups: list  # the specs as groups trained together (executors.group_runs)
    workers: int
    device: str
    datasets: dict[str, gans.Dataset]
    suite_dir: Path


def run_suite(suite: Suite, args: argparse.Namespace) -> int:
    """Run ``suite`` with the options of ``add_run_options`` and the selections, ``out``,
    ``no_report`` and ``reports`` of ``args``; returns the exit status of ``main``."""
    try:
        plan = plan_suite(suite, args)
    except (InputError, SuiteError, gans.RegistryError, gans.ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_plan(plan, args)


def plan_suite(suite: Suite, args: argparse.Namespace) -> SuitePlan:
    """Check everything about running ``suite`` with ``args`` that can be checked before a run
    starts (selections, device, datasets, the strategies on the data, files and directories),
    writing nothing.

    Raises:
        InputError, SuiteError, gans.RegistryError, gans.ConfigError: bad input, in one line.
    """
    seeds = _subset(args.seeds, suite.seeds, "seeds", int)
    strategies = _subset(args.strategies, suite.strategies, "strategies")
    names = _subset(args.datasets, tuple(suite.datasets), "datasets")
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise InputError("--executor ray needs Ray: pip install 'gan-loss-benchmark[ray]'")
    device = _device(args.device)
    suite_specs = suite.runs()
    if args.precision:  # a changed config: these runs get ids and directories of their own
        suite_specs = [
            dataclasses.replace(s, train=dataclasses.replace(s.train, precision=args.precision))
            for s in suite_specs
        ]
    specs = [
        s
        for s in suite_specs
        if s.train.seed in seeds and s.train.strategy in strategies and s.train.dataset in names
    ]
    # The most runs a group trains together; None: executors.auto_stack decides.
    groups = group_runs(specs, _auto_or_count(args.stack, "--stack"), device)
    workers = _workers(args.workers, device, len(groups))
    datasets = _load_datasets(names, args.data_root)
    _preflight(specs, datasets)
    if args.classifier_weights:
        _check_classifier_weights(args.classifier_weights, datasets)
    suite_dir = (args.out / suite.name).resolve()
    check_writable(suite_dir, "--out")
    _check_same_suite(suite_dir, suite)
    if args.reports is not None and not args.no_report:
        check_writable(args.reports, "--reports")
    if args.tensorboard is not None:
        check_writable(args.tensorboard, "--tensorboard")
    return SuitePlan(suite, suite_specs, specs, groups, workers, device, datasets, suite_dir)


PROBE_ITERS = 3  # generator iterations timed per network shape, after one to warm up


def training_estimate(plan: SuitePlan, retrain: bool = False) -> tuple[float, int, list[str]]:
    """About how long the runs of ``plan`` still to train (with ``retrain``, the finished ones
    too: --fresh) take on its device: seconds (split over its workers), how many runs, and why
    any could not be timed. Each run's critic and generator steps (its budget and n_critic
    schedule) times the seconds of one step, timed once per strategy and network shape
    (PROBE_ITERS iterations of one critic step each, with a worker's share of the CPU threads);
    evaluation comes on top, and stacking's gains are not counted."""
    step_s: dict[str, float] = {}  # seconds of a critic step plus a generator step, by shape
    total, runs, untimed = 0.0, 0, []
    threads = torch.get_num_threads()
    if torch.device(plan.device).type == "cpu":
        torch.set_num_threads(threads_per_worker(plan.workers))
    try:
        for spec in plan.specs:
            if not retrain and (plan.suite_dir / spec.run_id / DONE_MARKER).exists():
                continue
            try:
                total += min(_step_seconds(spec, plan, step_s), spec.seconds or math.inf)
                runs += 1
            except Exception as error:  # out of memory, a plugin's error: unknown, not zero
                untimed.append(f"{spec.train.strategy} on {spec.train.dataset}: {error}")
    finally:
        torch.set_num_threads(threads)
    return total / plan.workers, runs, untimed


def _step_seconds(spec, plan: SuitePlan, step_s: dict[str, float]) -> float:
    """The training seconds of ``spec``'s whole budget: its steps times a step's timed seconds
    (``step_s``, by network shape, filled as needed)."""
    train, data = spec.train, plan.datasets[spec.train.dataset]
    hparams = gans.make_strategy(train.strategy, train.hyperparameters).hparams
    # One critic step per iteration, one budget field: the shape and strategy decide a step.
    probe = dataclasses.replace(
        train,
        seed=0,
        hyperparameters={**train.hyperparameters, "n_critic": 1},
        gen_iters=1 + PROBE_ITERS,
        epochs=None,
        lr_decay=False,
    )
    # A step's cost: the networks, the data, the strategy, whether it penalizes (not its
    # learning rates or weights).
    shape = json.dumps(
        {**probe.as_dict(), "hyperparameters": hparams.penalty_weight is None},
        sort_keys=True,
        default=str,
    )
    if shape not in step_s:
        trainer = gans.Trainer(probe, device=plan.device, data=data, progress=False)
        trainer.train(until=1)
        start = time.perf_counter()
        trainer.train(until=1 + PROBE_ITERS)
        step_s[shape] = (time.perf_counter() - start) / PROBE_ITERS / 2
    batches = gans.batches_per_epoch(len(data.train), train.batch_size)
    gen_iters = train.gen_iters or gans.epochs_to_gen_iters(
        train.epochs, batches, hparams.critic_schedule
    )
    return step_s[shape] * (hparams.critic_schedule.critic_steps(gen_iters, batches) + gen_iters)


def run_plan(plan: SuitePlan, args: argparse.Namespace) -> int:
    """Run what ``plan_suite`` planned; returns the exit status of ``main``."""
    suite, suite_specs, specs, groups = plan.suite, plan.suite_specs, plan.specs, plan.groups
    workers, device, datasets, suite_dir = plan.workers, plan.device, plan.datasets, plan.suite_dir
    if args.executor == "ray":
        schedule = "runs as Ray tasks"
    elif workers > 1:
        threads = threads_per_worker(workers)
        schedule = f"{workers} runs at a time, {threads} torch thread{'s' * (threads > 1)} each"
    else:
        schedule = None  # one at a time in this process
    if (largest := max((len(group) for group in groups), default=1)) > 1:
        stacked = f"up to {largest} runs that differ only in seed stacked as one model"
        schedule = f"{schedule}; {stacked}" if schedule else stacked
    try:
        with locked(suite_dir, SUITE_LOCK, warn):
            _check_same_suite(suite_dir, suite)  # again: another runner may have started since
            write_json(suite_dir / SUITE_RECORD, {"source": suite.source, "digest": suite.digest})
            write_json(suite_dir / ENVIRONMENT_FILE, environment(device, schedule))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    here = code_version()  # the code of this invocation, recorded by every run it trains
    stale = {} if args.fresh else trained_by_other_code(suite_dir, specs, here)
    if args.fresh or args.fresh_if_code_changed:
        for spec in specs if args.fresh else [s for s in specs if s.run_id in stale]:
            with locked(suite_dir, spec.run_id, warn):  # never under a runner training it
                shutil.rmtree(suite_dir / spec.run_id, ignore_errors=True)
    elif stale:
        warn(f"{suite.name}: {_reused(stale, here)}; --fresh-if-code-changed trains them again")
    options = {
        "device": device,
        "data_root": args.data_root,
        "extractor_weights": {
            "inception_weights": args.inception_weights,
            "classifier_weights": args.classifier_weights,
        },
        "compile": args.compile,
        "deterministic": args.deterministic,
        "speedups": not args.no_speedups,
        "tensorboard_dir": args.tensorboard,
        "plugins": tuple(args.plugin),
        "code": here,
        "stack": True,  # the groups say which runs train together
    }
    rows = []
    bar = tqdm(
        total=len(specs), desc=f"suite {suite.name}", unit="run", position=0, dynamic_ncols=True
    )

    def on_done(row):
        rows.append(row)
        bar.update(1)
        bar.set_postfix_str(f"{row['dataset']} {row['strategy']} s{row['seed']}: {row['status']}")

    try:
        if args.executor == "ray":
            run_on_ray(groups, suite_dir, options, args.ray_address, on_done)
        elif workers > 1:
            run_in_workers(groups, suite_dir, options, workers, on_done)
        else:
            run_in_process(groups, suite_dir, options, datasets, on_done)
    finally:
        bar.close()
        # The tables hold every finished run of the suite, those of earlier invocations with
        # other subsets included, and are written even after an interrupt.
        with locked(suite_dir, SUITE_LOCK, warn):
            remove_stale_temporaries(suite_dir)  # of an interrupted table write
            suite_rows = _suite_rows(suite_specs, rows, suite_dir)
            collect_tables(suite_dir, suite_rows)
    # After the runs, not after an interrupt: a floor can take as long as a final evaluation.
    _write_references(suite_dir, suite_specs, suite_rows, datasets, options)
    failed = [row for row in rows if row["status"] == FAILED]
    _print_summary(rows, failed, suite_dir)
    report_failed = not args.no_report and _report(suite_dir, args.reports) != 0
    return 1 if failed or report_failed else 0


def trained_by_other_code(
    suite_dir: Path, specs, here: dict[str, Any]
) -> dict[str, tuple[str, bool]]:
    """The runs of ``specs`` with results (finished, or a checkpoint to resume) that code other
    than ``here`` (``code_version``) trained, at least in part: run id -> (that code in words,
    finished). A run whose record is missing or unreadable counts as "not recorded"."""
    found = {}
    for spec in specs:
        run_dir = suite_dir / spec.run_id
        finished = (run_dir / DONE_MARKER).exists()
        if not (finished or (run_dir / "state.pt").exists()):
            continue
        try:
            records = json.loads((run_dir / "config.json").read_text())["provenance"]
            codes = list(dict.fromkeys(code_of(r) for r in records if not trained_here(r, here)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            codes = [NOT_RECORDED]
        if codes:
            found[spec.run_id] = (RESUMED_JOIN.join(codes), finished)
    return found


def _reused(stale: dict[str, tuple[str, bool]], here: dict[str, Any]) -> str:
    """Runs of ``stale`` in words: "12 runs reused from 3f2a1c9, 1 resumed from a checkpoint of
    3f2a1c9 (this checkout: 5d6e7f8)"."""
    parts = []
    for finished, verb in ((True, "reused from"), (False, "resumed from a checkpoint of")):
        counts = collections.Counter(code for code, done in stale.values() if done == finished)
        parts += [f"{n} run{'s' * (n > 1)} {verb} {code}" for code, n in counts.items()]
    return f"{', '.join(parts)} (this checkout: {code_of(here)})"


def _suite_rows(all_specs, rows, suite_dir: Path) -> list[dict]:
    """This invocation's rows plus finished runs of the suite already on disk, in suite order. A
    run of this invocation whose results have gone since it finished (its directory deleted
    while the suite ran) is a failed run: a row without its tables would stop the report."""
    specs = {spec.run_id: spec for spec in all_specs}
    found = {}
    for row in rows:
        if row["status"] != FAILED and not (suite_dir / row["run_id"] / DONE_MARKER).exists():
            lost = FileNotFoundError(
                f"{suite_dir / row['run_id']} lost its results after the run finished; run the "
                "command again to train it again"
            )
            row = failed_row(specs[row["run_id"]], lost)
        found[row["run_id"]] = row
    for spec in all_specs:
        if spec.run_id not in found and (done := read_done(suite_dir / spec.run_id, warn)):
            found[spec.run_id] = done
    order = {spec.run_id: i for i, spec in enumerate(all_specs)}
    return sorted(found.values(), key=lambda row: order[row["run_id"]])


def _write_references(suite_dir: Path, specs, suite_rows, datasets, options) -> None:
    """references.parquet: the real-data floor of every dataset with runs in the tables, scored
    like the suite's first run of it (its eval_seed, the run's seed) on the runs' device. The rows
    are cached by the library, so only a new dataset, plan or extractor costs an evaluation."""
    with_runs = {row["dataset"] for row in suite_rows}
    first = {}
    for spec in specs:
        if spec.train.dataset in with_runs:
            first.setdefault(spec.train.dataset, spec)
    if not first:
        return
    rows = []
    bar = tqdm(first.values(), desc="real-data floors", unit="dataset", dynamic_ncols=True)
    for spec in bar:
        name = spec.train.dataset
        bar.set_postfix_str(name)
        try:  # a dataset of an earlier invocation, deselected this time, is loaded now
            data = datasets.get(name) or gans.load_dataset(name, root=options["data_root"])
            found, skipped = reference_rows(
                spec,
                data,
                device=options["device"],
                data_root=options["data_root"],
                extractor_weights=options["extractor_weights"],
            )
        except Exception as error:  # the runs and their tables are kept; only the floor is lost
            message = f"real-data floor for {name} failed: {type(error).__name__}: {error}"
            tqdm.write(message, file=sys.stderr)
            continue
        rows += found
        tqdm.write(f"real-data floor for {name}: {_floor_summary(found, skipped)}")
    bar.close()
    with locked(suite_dir, SUITE_LOCK, warn):
        write_table(suite_dir / REFERENCES_TABLE, with_columns(pd.DataFrame(rows), "references"))


def _floor_summary(rows: list[dict], skipped: list[str]) -> str:
    parts = []
    for stage in dict.fromkeys(row["stage"] for row in rows):
        mine = [row for row in rows if row["stage"] == stage]
        suffix = {INCEPTION: INCEPTION_SUFFIX}  # as in the runs' columns
        values = ", ".join(
            f"{r['metric']}{suffix.get(r['feature_extractor'], '')}={r['value']:.4g}" for r in mine
        )
        parts.append(f"{stage} ({mine[0]['n_fake']} samples) {values}")
    parts += [f"not computed at {reason}" for reason in skipped]
    return "; ".join(parts)


def _print_summary(rows, failed, suite_dir: Path) -> None:
    counts = collections.Counter(row["status"] for row in rows)
    print(
        f"{len(rows)} runs: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f"; tables in {suite_dir}"
    )
    for row in failed:
        print(
            f"failed: {row['dataset']} {row['strategy']} seed {row['seed']} ({row['run_id']}): "
            f"{row['message']}",
            file=sys.stderr,
        )


def _report(suite_dir: Path, reports: Path | None) -> int:
    from benchmarks import report  # matplotlib and seaborn load only when a report is written

    return report.main([str(suite_dir)] + ([] if reports is None else ["--out", str(reports)]))


if __name__ == "__main__":
    sys.exit(main())
