"""Runs of a suite, start to finish, alone or as a stacked group: train in chunks between
evaluation points, checkpoint each run after each chunk, evaluate, and leave each run's tables and
completion marker. Rerunning resumes from the last checkpoints; a finished run is skipped."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import gans
from benchmarks.provenance import (
    not_recorded,
    provenance_columns,
    run_provenance,
    same_provenance,
)
from benchmarks.store import (
    DONE_MARKER,
    FAILED,
    FINAL,
    INCEPTION_SUFFIX,
    INITIAL,
    INTERMEDIATE,
    REAL_DATA,
    SWEEP_SAMPLE,
    SWEPT_PREFIX,
    locked,
    read_done,
    remove_stale_temporaries,
    set_aside,
    write_json,
    write_table,
)
from benchmarks.suites import EvalPlan, RunSpec
from gans.metrics_image import INCEPTION
from gans.metrics_toy import critic_surface, data_square

INTERMEDIATE_METRICS = ("kid", "fid")  # cheap enough to run along the way


def run_row(spec: RunSpec) -> dict[str, Any]:
    """The config columns of a run's row in runs.parquet."""
    train = spec.train
    return {
        "run_id": spec.run_id,
        "suite": spec.suite,
        "strategy": train.strategy,
        "dataset": train.dataset,
        "arch": train.arch,
        "width": gans.ARCHITECTURES.get(train.arch).resolved_width(train.width),
        "seed": train.seed,
        "critic_norm": train.critic_norm,
        "batch_size": train.batch_size,
        "train_precision": train.precision,  # "precision" is the metric's column
        "hparams": json.dumps(spec.resolved["hparams"], default=list),
        # The pieces by name (loss, penalty, constraint), for labels that fit a plugin's.
        # ("" where a strategy has none: a None would come back from parquet as NaN).
        **{
            piece: name or ""
            for piece, name in gans.make_strategy(train.strategy, train.hyperparameters)
            .pieces()
            .items()
        },
        # The budget and the evaluation plan, so that the report needs the tables only.
        "budget_gen_iters": train.gen_iters,  # None in epochs: the row of a trained run has it
        "budget_epochs": train.epochs,
        "divergence_limit": train.divergence_limit,
        "budget_s": spec.seconds,
        "eval_every": spec.eval.every,
        "intermediate_samples": spec.eval.intermediate_samples,
        "final_samples": spec.eval.final_samples,
        "extractors": ", ".join(spec.eval.extractors),
        "plugin_sources": "; ".join(
            f"{part} {source['object']} from {source['provider']} ({source['file']}, "
            f"sha256 {source['sha256'][:12]})"
            for part, source in spec.plugin_sources.items()
        ),
        # In a sweep, the sample and its drawn values (a list, e.g. Adam's betas, as JSON).
        **({SWEEP_SAMPLE: spec.sample, "sweep": spec.sweep} if spec.sample is not None else {}),
        **{
            f"{SWEPT_PREFIX}{name}": value if np.isscalar(value) else json.dumps(value)
            for name, value in spec.swept
        },
    }


def execute_group(
    specs: list[RunSpec],
    suite_dir: Path,
    *,
    device: str = "cpu",
    data_root=None,
    data: gans.Dataset | None = None,
    progress: bool = True,
    extractor_weights: dict[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
    plugins: tuple[str, ...] = (),
    code: dict[str, Any] | None = None,
    compile: bool = False,
    deterministic: bool = False,
    speedups: bool = True,
    stack: bool = False,
) -> list[dict[str, Any]]:
    """Run ``specs`` (or resume them, or skip those done) and return their rows for
    runs.parquet, in order. With ``stack``, runs that differ only in seed (``group_runs``) train
    together as one batched model (``gans.StackedTrainer``), each with its own run directory,
    checkpoint, evaluations and row; a group that cannot stack trains its runs one at a time, with
    one line saying why. Without, they train one at a time. Each run records its provenance
    (``run_provenance``) with ``code``, the invocation's ``code_version``.

    An exception inside a run is caught: its row says ``failed`` with the message, the traceback
    goes to error.log, and the checkpoint stays for the next attempt (stacked, an exception in the
    batched training fails every run still training with it). Interrupts propagate. The runs'
    locks are held throughout, so a second runner on the same results waits, then finds the runs
    finished. Damaged files are set aside with one line on stderr (``read_done``,
    ``_read_checkpoint``), never a traceback.
    """
    for plugin in plugins:  # worker processes and Ray tasks start without them
        gans.load_plugin(plugin)
    rows: dict[str, dict[str, Any]] = {}
    provenance = run_provenance(device, code)
    with contextlib.ExitStack() as locks:
        # Another runner may be training one: wait. In one global order (by run id), so that
        # runners whose groups list the same runs in other orders never wait for each other.
        for run_id in sorted(spec.run_id for spec in specs):
            locks.enter_context(locked(suite_dir, run_id, warn))
        runs = []
        for spec in specs:
            run_dir = suite_dir / spec.run_id
            done = read_done(run_dir, warn)
            if done is not None:
                rows[spec.run_id] = done
                continue
            if run_dir.exists():
                remove_stale_temporaries(run_dir)
            try:
                trainer = gans.Trainer(
                    spec.train,
                    device=device,
                    data=data,
                    data_root=data_root,
                    progress=progress,
                    progress_position=1,  # under the suite's bar
                    compile=compile,
                    deterministic=deterministic,
                    speedups=speedups,
                )
                runs.append(_Run(spec, run_dir, trainer, data_root, extractor_weights))
            except Exception as error:  # one run failing never stops the others
                rows[spec.run_id] = _failed(spec, run_dir, error)
        stacked = stack and len(runs) > 1 and _can_stack(runs, compile)
        for run in list(runs):
            try:
                run.start(len(runs) if stacked else 1, provenance, tensorboard_dir)
            except Exception as error:
                rows[run.spec.run_id] = _failed(run.spec, run.dir, error)
                runs.remove(run)
        _train(runs, stacked, progress, rows)
        for run in runs:
            if run.spec.run_id not in rows:
                try:
                    rows[run.spec.run_id] = run.finish()
                except Exception as error:
                    rows[run.spec.run_id] = _failed(run.spec, run.dir, error)
    return [rows[spec.run_id] for spec in specs]


def _can_stack(runs: list[_Run], compile: bool) -> bool:
    """Whether ``runs`` can train stacked; if not, one line on stderr and in each run's log."""
    first = runs[0].trainer
    why = "--compile compiles separate runs only" if compile else gans.stacking_obstacle(first)
    if why is None:
        return True
    message = f"{first.config.strategy} on {first.config.dataset}: runs train separately: {why}"
    warn(message)
    for run in runs:
        _log(run.dir, message)
    return False


def _train(runs: list[_Run], stacked: bool, progress: bool, failed: dict[str, dict]) -> None:
    """Train ``runs`` to the end in chunks between evaluation points, the runs at the earliest
    iteration first (stacked: all of them together), so that runs resumed at different points
    catch up and then train together. A chunk that raises fails its runs (their rows go into
    ``failed``); the others go on."""
    while running := [
        run for run in runs if run.trainer.status == gans.RUNNING and run.spec.run_id not in failed
    ]:
        at = min(run.trainer.gen_iter for run in running)
        chunk = [run for run in running if run.trainer.gen_iter == at]
        if not stacked:
            chunk = chunk[:1]
        every, seconds = chunk[0].spec.eval.every, chunk[0].spec.seconds
        until = (at // every + 1) * every
        try:
            if stacked:
                group = gans.StackedTrainer(
                    [run.trainer for run in chunk], progress=progress, progress_position=1
                )
                group.train(until=until, max_seconds=seconds)
            else:
                chunk[0].trainer.train(until=until, max_seconds=seconds)
            for run in chunk:
                run.checkpoint()
        except Exception as error:  # one run (or group) failing never stops the others
            for run in chunk:
                failed[run.spec.run_id] = _failed(run.spec, run.dir, error)


def _failed(spec: RunSpec, run_dir: Path, error: Exception) -> dict[str, Any]:
    """Record ``error`` in the run's directory (error.log, and config.json if missing)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.log").write_text(
        "".join(traceback.format_exception(type(error), error, error.__traceback__))
    )
    if not (run_dir / "config.json").exists():  # it failed before training: what was asked
        write_json(run_dir / "config.json", spec.resolved)
    return failed_row(spec, error)


def warn(message: str) -> None:
    """One line to stderr, above the progress bars."""
    tqdm.write(message, file=sys.stderr)


def _read_checkpoint(path: Path, device) -> dict[str, Any] | None:
    """The run's last checkpoint; None when there is none, or when it is damaged (truncated,
    empty, not a checkpoint): then it is set aside and the run starts again from the beginning."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if not (isinstance(state, dict) and {"trainer", "evals", "eval_s"} <= state.keys()):
            raise ValueError("not a checkpoint of this runner")
    except Exception as error:  # what a damaged file raises varies: EOFError, OSError, pickle's
        # The type only: torch's own message suggests weights_only=False, which is unsafe.
        _set_aside_checkpoint(path, type(error).__name__)
        return None
    return state


def _set_aside_checkpoint(path: Path, reason: str, problem: str = "is unreadable") -> None:
    message = set_aside(path, reason, problem) + "; the run starts again from the beginning"
    warn(message)
    _log(path.parent, message)


def failed_row(spec: RunSpec, error: BaseException) -> dict[str, Any]:
    """The runs.parquet row of a run that raised ``error``: its message on one line."""
    message = " ".join(f"{type(error).__name__}: {error}".split())[:500]
    return {**run_row(spec), "status": FAILED, "message": message}


class _Run:
    """One run's directory, trainer, evaluations and checkpoint between training chunks."""

    def __init__(self, spec: RunSpec, run_dir: Path, trainer, data_root, extractor_weights):
        self.spec, self.dir, self.trainer = spec, run_dir, trainer
        self.evaluator = _Evaluator(spec, trainer, data_root, extractor_weights)
        # The last checkpoint stays after the run: it holds the trained generator and critic.
        self.state_path = run_dir / "state.pt"
        self.board = None

    def start(self, stack: int, provenance: dict[str, Any], tensorboard_dir: Path | None) -> None:
        """Record what the run trains with, then resume it from its checkpoint, or evaluate
        the untrained generator. ``stack``: how many runs train together with it (1: alone);
        ``provenance``: what computes it here (``run_provenance``), added to the run's record
        when it differs from what computed the run so far."""
        trainer, evaluator = self.trainer, self.evaluator
        self.stack = stack
        state = _read_checkpoint(self.state_path, trainer.device)
        if state is not None:
            try:
                trainer.load_state_dict(state["trainer"])
            except gans.ForeignCheckpoint as error:  # e.g. copied from another run's directory
                _set_aside_checkpoint(self.state_path, str(error), "cannot be resumed")
                state = None
        if state is not None:
            evaluator.rows, evaluator.seconds = list(state["evals"]), state["eval_s"]
        # A checkpoint from before runs recorded their provenance: that part's is unknown.
        self.provenance = list(state.get("provenance", [not_recorded()])) if state else []
        if not self.provenance or not same_provenance(self.provenance[-1], provenance):
            self.provenance.append({**provenance, "from_gen_iter": trainer.gen_iter})
        # What the run trained with, beside what it was asked to train.
        write_json(
            self.dir / "config.json",
            {
                **self.spec.resolved,
                "speedups": trainer.speedups,
                "critic_calls": trainer.critic_calls,
                "gen_iters": trainer.gen_iters,
                "critic_batches_per_epoch": trainer.batches_per_epoch,
                "stack": stack,
                "provenance": self.provenance,
                "plugin_sources": self.spec.plugin_sources,
            },
        )
        if state is not None:
            _log(self.dir, f"resumed at generator iteration {trainer.gen_iter}")
        else:
            _log(self.dir, f"started on {trainer.device}" + _stacked(stack))
            # The untrained generator, so curves start at iteration 0 and the final numbers can
            # be read against where training began. Evaluation draws its own noise: training is
            # unchanged.
            for stage in (INTERMEDIATE, INITIAL):
                evaluator.evaluate(stage)
                _log(self.dir, evaluator.summary())
            _save_samples(trainer, self.dir)
        if tensorboard_dir:
            self.board = _TensorBoard(tensorboard_dir, self.spec)

    def checkpoint(self) -> None:
        """After a training chunk: evaluate (unless the run ended) and save the checkpoint."""
        trainer, evaluator = self.trainer, self.evaluator
        if trainer.status == gans.RUNNING:
            evaluator.evaluate(INTERMEDIATE)
            _save_samples(trainer, self.dir)
            _log(self.dir, evaluator.summary())
        state = {
            "trainer": trainer.state_dict(),
            "evals": evaluator.rows,
            "eval_s": evaluator.seconds,
            "provenance": self.provenance,
        }
        gans.save_atomically(state, self.state_path)
        if self.board:
            self.board.write(trainer.curves, evaluator.rows)

    def finish(self) -> dict[str, Any]:
        """The final evaluation, the run's tables and completion marker. Returns: its row."""
        spec, run_dir, trainer, evaluator = self.spec, self.dir, self.trainer, self.evaluator
        if trainer.status == gans.DONE:
            evaluator.evaluate(FINAL)
            _save_samples(trainer, run_dir)
            if trainer.data.kind == "points":
                _save_toy_views(trainer, run_dir, spec.eval.final_samples)
            _log(run_dir, evaluator.summary())
        if self.board:
            self.board.write(trainer.curves, evaluator.rows)
            self.board.close()
        curves = pd.DataFrame(trainer.curves)
        curves.insert(0, "run_id", spec.run_id)
        write_table(run_dir / "curves.parquet", curves)
        evals = pd.DataFrame(evaluator.rows)
        evals.insert(0, "run_id", spec.run_id)
        write_table(run_dir / "evals.parquet", evals)
        row = {
            **run_row(spec),
            "budget_gen_iters": trainer.gen_iters,
            "status": trainer.status,
            "message": _divergence(trainer) if trainer.status == gans.DIVERGED else "",
            "diverged_at": trainer.diverged_at,
            "gen_iters": trainer.gen_iter,
            "critic_steps": trainer.critic_steps,
            "train_s": trainer.elapsed_s,
            "eval_s": evaluator.seconds,
            "speedups": ", ".join(trainer.speedups) or "none",
            "critic_calls": trainer.critic_calls,
            "stack": self.stack,
            **provenance_columns(self.provenance),
            **evaluator.final_columns(),
        }
        write_json(run_dir / DONE_MARKER, row)
        _log(
            run_dir,
            f"{trainer.status} after {trainer.gen_iter} generator iterations, "
            f"{trainer.elapsed_s:.1f} s training, {evaluator.seconds:.1f} s evaluation",
        )
        return row


def _stacked(stack: int) -> str:
    return f", stacked with {stack - 1} other run{'s' * (stack > 2)}" if stack > 1 else ""


def _divergence(trainer: gans.Trainer) -> str:
    return (
        f"a loss was non-finite or beyond ±{trainer.config.divergence_limit:g} at generator "
        f"iteration {trainer.diverged_at}; training stopped at {trainer.gen_iter}"
    )


def evaluation_calls(plan: EvalPlan, kind: str, stage: str) -> list[tuple[int, dict[str, Any]]]:
    """The ``(n_fake, options)`` of each ``gans.evaluate`` call of one evaluation at ``stage``:
    the intermediate plan (cheap metrics), or the final plan (initial and final stages: every
    metric, once per image feature extractor)."""
    if stage == INTERMEDIATE:
        metrics = {"metrics": INTERMEDIATE_METRICS} if kind == "image" else {}
        return [(plan.intermediate_samples, metrics)]
    if kind != "image":
        return [(plan.final_samples, {})]
    return [(plan.final_samples, {"extractor": extractor}) for extractor in plan.extractors]


def image_options(spec: RunSpec, kind: str, data_root, extractor_weights) -> dict[str, Any]:
    """The options every image evaluation of ``spec``'s run passes to ``gans.evaluate``;
    ``extractor_weights``: the ``inception_weights`` and ``classifier_weights`` files given."""
    if kind != "image":
        return {}
    options: dict[str, Any] = dict(extractor_weights or {})
    name = spec.train.dataset
    if ":" in name:
        # A classifier trained on one class says nothing: train it on the whole dataset.
        options["classifier_data"] = gans.load_dataset(name.partition(":")[0], root=data_root)
    return options


def reference_rows(
    spec: RunSpec,
    data: gans.Dataset,
    *,
    device: str = "cpu",
    data_root=None,
    extractor_weights=None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The real-data floor of ``spec``'s dataset: train rows scored against the test split by
    ``gans.evaluate_real`` at the intermediate and final plans, exactly as ``spec``'s run scores
    its generator (the same sample counts, extractors, metrics and eval_seed, the run's seed).

    Returns:
        The rows for references.parquet (dataset, reference, stage, then the metric row), and one
        message per evaluation left out because the train split has fewer rows than it needs.
    """
    options = image_options(spec, data.kind, data_root, extractor_weights)
    rows, skipped = [], []
    for stage in (INTERMEDIATE, FINAL):
        for n_fake, call in evaluation_calls(spec.eval, data.kind, stage):
            if n_fake > len(data.train):
                reason = f"{stage}: {n_fake} samples, the train split has {len(data.train)}"
                skipped += [reason] if reason not in skipped else []  # once, not per extractor
                continue
            found = gans.evaluate_real(
                data, n_fake, eval_seed=spec.train.seed, device=device, **call, **options
            )
            head = {"dataset": spec.train.dataset, "reference": REAL_DATA, "stage": stage}
            rows += [{**head, **row.as_dict()} for row in found]
    return rows, skipped


class _Evaluator:
    """Evaluates a trainer along the way and at the end, keeping the rows and the time."""

    def __init__(self, spec: RunSpec, trainer: gans.Trainer, data_root, extractor_weights):
        self.spec, self.trainer = spec, trainer
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.options = image_options(spec, trainer.data.kind, data_root, extractor_weights)

    def evaluate(self, stage: str) -> None:
        start = time.perf_counter()
        found = [
            row
            for n_fake, call in evaluation_calls(self.spec.eval, self.trainer.data.kind, stage)
            for row in gans.evaluate(
                self.trainer, n_fake, eval_seed=self.spec.train.seed, **call, **self.options
            )
        ]
        self.seconds += time.perf_counter() - start
        self.rows += [
            {
                "gen_iter": self.trainer.gen_iter,
                "elapsed_s": self.trainer.elapsed_s,
                "stage": stage,
                **row.as_dict(),
            }
            for row in found
        ]

    def summary(self) -> str:
        """The latest evaluation in one log line."""
        point = self.rows[-1]["gen_iter"], self.rows[-1]["stage"]
        last = [r for r in self.rows if (r["gen_iter"], r["stage"]) == point]
        values = ", ".join(f"{r['metric']}={r['value']:.4g}" for r in last)
        return f"{point[1]} evaluation at generator iteration {point[0]}: {values}"

    def final_columns(self) -> dict[str, Any]:
        """Final metric values as columns; Inception's get their own, never mixed with others."""
        columns = {}
        for row in self.rows:
            if row["stage"] == FINAL:
                inception = row["feature_extractor"] == INCEPTION
                suffix = INCEPTION_SUFFIX if inception else ""
                columns[f"{row['metric']}{suffix}"] = row["value"]
        return columns


def _log(run_dir: Path, message: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "run.log", "a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def _save_samples(trainer: gans.Trainer, run_dir: Path) -> None:
    if trainer.data.kind == "image":
        trainer.save_samples(run_dir / "samples" / f"{trainer.gen_iter:07d}.png")


def _save_toy_views(trainer: gans.Trainer, run_dir: Path, n: int) -> None:
    """Generated and real points and the critic's surface, for the report's toy figures."""
    real = trainer.data.test[:n]
    fake = trainer.generate(n, torch.Generator(trainer.device).manual_seed(trainer.config.seed))
    lo, hi = data_square(real)
    xs, ys, surface = critic_surface(trainer.critic, lo, hi)
    np.savez_compressed(
        run_dir / "toy.npz",
        fake=fake.cpu().numpy(),
        real=real.cpu().numpy(),
        xs=xs.numpy(),
        ys=ys.numpy(),
        critic=surface.numpy(),
    )


class _TensorBoard:
    """Losses and metrics as TensorBoard scalars, appended as the run goes."""

    CURVES = {
        "critic_loss": "loss/critic",
        "g_loss": "loss/generator",
        "w_estimate": "critic/w_estimate",
        "penalty": "critic/penalty",
        "grad_norm": "critic/grad_norm",
        "heldout_critic_loss": "loss/critic_heldout",
    }

    def __init__(self, root: Path, spec: RunSpec):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` extra

        train = spec.train
        self.writer = SummaryWriter(
            str(root / spec.suite / f"{train.dataset}-{train.strategy}-s{train.seed}-{spec.run_id}")
        )
        self.curves_written = self.evals_written = 0

    def write(self, curves: list[dict], evals: list[dict]) -> None:
        for row in curves[self.curves_written :]:
            for column, tag in self.CURVES.items():
                if np.isfinite(row[column]):
                    self.writer.add_scalar(tag, row[column], row["gen_iter"])
        for row in evals[self.evals_written :]:
            if np.isfinite(row["value"]):
                self.writer.add_scalar(f"metrics/{row['metric']}", row["value"], row["gen_iter"])
        self.curves_written, self.evals_written = len(curves), len(evals)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
