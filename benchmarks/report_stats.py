"""The report's numbers: setup, summary over seeds, pairwise comparisons and failed runs.

Everything here is a pure function of the results tables, and every random draw (the bootstrap)
is seeded, so regenerating a report from the same tables gives the same numbers. Tables come out
as ``Table``s of text cells that both templates (HTML and Markdown) render the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import gans
from benchmarks.execute import FAILED, INCEPTION_SUFFIX
from gans import metrics as m

# Directions follow the metrics' definitions: distances are lower-is-better, the rest higher.
IMAGE_METRICS = (m.FID, m.IS, m.KID, m.PRECISION, m.RECALL)
SUMMARY_ORDER = (*IMAGE_METRICS, m.W1, m.MODES_COVERED, m.HIGH_QUALITY)
CONFIDENCE = 0.95
ALPHA = 0.05
# A bootstrap over two seeds can only resample {x1, x2, mean}: no interval worth printing.
MIN_SEEDS_FOR_CI = 3
BOOTSTRAP_SEED = 0  # fixed: the same tables give the same intervals
BOOTSTRAP_RESAMPLES = 9999  # scipy's default


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *values, best=()) -> None:
        self.rows.append(
            [v if isinstance(v, Cell) else Cell(fmt(v), i in best) for i, v in enumerate(values)]
        )


def fmt(value) -> str:
    """Four significant digits (never fewer integer digits); "—" for a missing number."""
    if value is None or isinstance(value, str):
        return value or "—"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def plain(value) -> str:
    """A configuration value as written in a config file ("—" when unset)."""
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def direction(metric: str) -> int:
    """-1 when lower is better, +1 when higher is better, 0 when the metric has no better side."""
    base = metric.removesuffix(INCEPTION_SUFFIX)
    return -1 if base in m.LOWER_IS_BETTER else 1 if base in m.HIGHER_IS_BETTER else 0


def metric_name(metric: str) -> str:
    """How sentences name a metric: "FID", "modes covered", "KID (Inception)"."""
    base = metric.removesuffix(INCEPTION_SUFFIX)
    name = base.upper() if base in (m.FID, m.IS, m.KID, m.W1) else base.replace("_", " ")
    return f"{name} (Inception)" if base != metric else name


def metric_label(metric: str) -> str:
    arrow = {-1: " ↓", 1: " ↑", 0: ""}[direction(metric)]
    return f"{metric}{arrow}"


def ordered_metrics(present) -> list[str]:
    """The summary metrics among ``present``, classifier-feature ones before Inception ones."""
    names = [*SUMMARY_ORDER, *(f"{n}{INCEPTION_SUFFIX}" for n in IMAGE_METRICS)]
    present = set(present)
    return [n for n in names if n in present]


def summary_metrics(runs: pd.DataFrame) -> list[str]:
    """The final-metric columns of ``runs`` with at least one value."""
    return ordered_metrics(c for c in runs.columns if runs[c].notna().any())


def finite(values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def bootstrap_ci(samples: tuple[np.ndarray, ...], statistic) -> tuple[float, float]:
    """Percentile bootstrap CI (seeded), or NaNs when a sample has fewer than MIN_SEEDS_FOR_CI."""
    if min(len(s) for s in samples) < MIN_SEEDS_FOR_CI:
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):  # no spread: the interval is the point
        value = float(statistic(*samples))
        return value, value
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,  # statistic(*samples, axis=-1) over all resamples at once
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def estimate_text(values: np.ndarray) -> str:
    """Mean ± standard deviation [bootstrap CI] over seeds, as text."""
    if len(values) == 0:
        return "—"
    std = np.std(values, ddof=1) if len(values) > 1 else math.nan
    low, high = bootstrap_ci((values,), np.mean)
    ci = f"[{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else "[CI n/a]"
    return f"{fmt(np.mean(values))} ± {fmt(std)} {ci}"


def strategy_order(runs: pd.DataFrame) -> list[str]:
    """Strategies in the suite's order (first appearance), which fixes their colours too."""
    return list(dict.fromkeys(runs["strategy"]))


def summary_table(runs: pd.DataFrame) -> Table:
    """One row per strategy of one dataset: final metrics over seeds, counts and time."""
    metrics = summary_metrics(runs)
    done = runs[runs["status"] == gans.DONE]
    table = Table(
        ["strategy", "seeds done", "diverged", "failed"]
        + [metric_label(x) for x in metrics]
        + ["s / gen iter", "total s"]
    )
    means = {x: done.groupby("strategy")[x].mean() for x in metrics}
    best_of = {}  # metric -> strategies sharing the best mean
    for x in metrics:
        if direction(x) and means[x].notna().any():
            best = means[x].min() if direction(x) < 0 else means[x].max()
            best_of[x] = set(means[x].index[means[x] == best])
    for strategy in strategy_order(runs):
        rows = runs[runs["strategy"] == strategy]
        ok = rows[rows["status"] == gans.DONE]
        statuses = rows["status"].tolist()
        per_iter = finite(rows.get("train_s", np.nan) / rows.get("gen_iters", np.nan))
        total = finite(rows.get("train_s", np.nan)).sum() + finite(rows.get("eval_s", np.nan)).sum()
        cells = [strategy, len(ok), statuses.count(gans.DIVERGED), statuses.count(FAILED)]
        cells += [
            Cell(estimate_text(finite(ok[x])), strategy in best_of.get(x, ())) for x in metrics
        ]
        cells += [per_iter.mean() if len(per_iter) else math.nan, total]
        table.add(*cells)
    return table


@dataclass(frozen=True)
class Comparison:
    metric: str
    better: str
    worse: str
    difference: float  # the better strategy's advantage in the metric's units (>= 0)
    low: float
    high: float
    effect: float  # rank-biserial: +1 when every seed of `better` beats every seed of `worse`
    p: float
    n_better: int
    n_worse: int
    conclusive: bool
    sentence: str


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give with these sample sizes."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def compare(metric: str, a: str, x: np.ndarray, b: str, y: np.ndarray) -> Comparison:
    """Mann-Whitney U test of a vs b on one metric, worded with the better strategy first."""
    sign = direction(metric) or 1
    if sign * (np.mean(y) - np.mean(x)) > 0:
        a, x, b, y = b, y, a, x
    difference = sign * (np.mean(x) - np.mean(y))
    if math.isclose(np.mean(x), np.mean(y), rel_tol=1e-9, abs_tol=1e-12):
        difference = 0.0  # equal means that differ only by float rounding in the summation
    low, high = bootstrap_ci(
        (x, y), lambda u, v, axis=-1: sign * (np.mean(u, axis) - np.mean(v, axis))
    )
    test = stats.mannwhitneyu(x, y, alternative="two-sided")
    effect = sign * (2 * test.statistic / (len(x) * len(y)) - 1)
    p, floor = float(test.pvalue), smallest_p(len(x), len(y))
    word = {-1: "lower", 1: "higher", 0: "higher"}[direction(metric)]
    name = metric_name(metric)
    ci = (
        f"[{fmt(low)}, {fmt(high)}]"
        if math.isfinite(low)
        else f"(CI not computed, < {MIN_SEEDS_FOR_CI} seeds)"
    )
    facts = f"difference {fmt(difference)} {ci}, p={p:.3g}, {len(x)} vs {len(y)} seeds"
    conclusive = floor <= ALPHA
    if difference == 0:
        claim = f"{a} and {b} have the same mean {name}"
    elif conclusive and p >= ALPHA:
        claim = f"no clear difference in {name} between {a} and {b}"
    else:
        claim = f"{a} {word} {name} than {b}"
    sentence = f"{claim}, {facts}"
    if not conclusive:
        sentence = (
            f"too few seeds to conclude: {sentence}; with {len(x)} vs {len(y)} seeds the "
            f"smallest possible Mann-Whitney p is {floor:.2g}"
        )
    return Comparison(
        metric, a, b, difference, low, high, effect, p, len(x), len(y), conclusive, sentence
    )


def comparisons(runs: pd.DataFrame) -> list[Comparison]:
    """Every pair of strategies on every final metric of one dataset (finished runs only)."""
    done = runs[runs["status"] == gans.DONE]
    found = []
    for metric in summary_metrics(runs):
        values = {s: finite(done.loc[done["strategy"] == s, metric]) for s in strategy_order(runs)}
        for a, b in combinations([s for s, v in values.items() if len(v)], 2):
            found.append(compare(metric, a, values[a], b, values[b]))
    return found


def comparison_table(found: list[Comparison]) -> Table:
    table = Table(
        ["metric", "better", "worse", "difference", "95% CI", "rank-biserial", "p", "n", "reading"]
    )
    for c in found:
        ci = f"[{fmt(c.low)}, {fmt(c.high)}]" if math.isfinite(c.low) else "n/a"
        n = f"{c.n_better} vs {c.n_worse}"
        table.add(c.metric, c.better, c.worse, c.difference, ci, c.effect, c.p, n, c.sentence)
    return table


def verdicts(runs: pd.DataFrame, found: list[Comparison]) -> list[str]:
    """Per metric: the best strategy by mean and how sure that is against the runner-up."""
    done = runs[runs["status"] == gans.DONE]
    lines = []
    for metric in summary_metrics(runs):
        means = done.groupby("strategy")[metric].mean().dropna()
        if not direction(metric) or means.empty:
            continue
        ranked = means.sort_values(ascending=direction(metric) < 0, kind="stable").index.tolist()
        tied = [s for s in ranked if means[s] == means[ranked[0]]]
        if len(tied) > 1:
            lines.append(
                f"{metric_name(metric)}: tie between {', '.join(tied)} "
                f"(mean {fmt(means[ranked[0]])})"
            )
            continue
        line = f"{metric_name(metric)}: best {ranked[0]} (mean {fmt(means[ranked[0]])})"
        if len(ranked) > 1:
            pair = next(
                c for c in found if c.metric == metric and {c.better, c.worse} == set(ranked[:2])
            )
            line += f"; against the runner-up: {pair.sentence}"
        lines.append(line)
    return lines


def read_config(suite_dir: Path, run_id: str) -> dict | None:
    path = suite_dir / run_id / "config.json"
    return json.loads(path.read_text()) if path.exists() else None


def setup_table(suite_dir: Path, runs: pd.DataFrame, evals: pd.DataFrame) -> Table:
    """Each (dataset, strategy)'s resolved hyperparameters, model, budget and evaluation."""
    table = Table(
        ["dataset", "strategy", "optimizer", "lr", "betas", "n_critic", "penalty weight"]
        + ["clip value", "other", "arch", "width", "batch", "budget", "evaluation", "features"]
    )
    known = {"optimizer", "lr", "betas", "n_critic", "penalty_weight", "clip_value"}
    for (dataset, strategy), rows in runs.groupby(["dataset", "strategy"], sort=False):
        first = rows.iloc[0]
        config = read_config(suite_dir, first["run_id"]) or {}
        hp = config.get("hparams") or json.loads(first.get("hparams") or "{}")
        train, plan = config.get("train", {}), config.get("eval", {})
        betas = hp.get("betas")
        other = ", ".join(f"{k}={plain(v)}" for k, v in hp.items() if k not in known)
        if config.get("seconds") is not None:
            budget = f"{fmt(config['seconds'])} s"
        else:
            budget = f"{train['gen_iters']} gen iters" if train else "—"
        evaluation = (
            f"every {plan['every']} iters on {plan['intermediate_samples']}, "
            f"final on {plan['final_samples']} samples"
            if plan
            else "—"
        )
        used = evals[(evals["run_id"].isin(rows["run_id"])) & (evals["stage"] == "final")]
        features = ", ".join(sorted(set(used.get("feature_extractor", pd.Series()).dropna())))
        table.add(
            dataset,
            strategy,
            hp.get("optimizer"),
            plain(hp.get("lr")),
            ", ".join(map(plain, betas)) if betas else None,
            plain(hp.get("n_critic")),
            plain(hp.get("penalty_weight")),
            plain(hp.get("clip_value")),
            other,
            first["arch"],
            first["width"],
            first.get("batch_size"),
            budget,
            evaluation,
            features or ", ".join(plan.get("extractors", [])),
        )
    return table


def failures_table(runs: pd.DataFrame) -> Table:
    """Every run that did not finish normally, with the step it stopped at and why."""
    table = Table(["dataset", "strategy", "seed", "run", "status", "step", "message"])
    for _, row in runs[runs["status"] != gans.DONE].iterrows():
        step = row.get("diverged_at")
        if step is None or not np.isfinite(step):
            step = row.get("gen_iters")
        step = int(step) if step is not None and np.isfinite(step) else None
        table.add(
            row["dataset"],
            row["strategy"],
            row["seed"],
            row["run_id"],
            row["status"],
            step,
            row.get("message"),
        )
    return table
