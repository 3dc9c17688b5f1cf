"""The report's first section: per dataset, the answer in a few plain lines.

Which strategy ranks best on the dataset's primary metric (W1 for toy points, FID for images),
which differences are significant and by how much, how long each strategy takes to reach a stated
quality, what it costs, and what the budget limits. Every seed counts: diverged seeds rank last
and are named beside every mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import gans
from benchmarks import report_stats as rs
from benchmarks.bootstrap import bootstrap_ci
from benchmarks.store import INITIAL
from gans import metrics as m

PRIMARY = (m.FID, f"{m.FID}{rs.INCEPTION_SUFFIX}", m.W1)  # the first one a dataset has


def primary_metric(metrics: list[str]) -> str | None:
    return next((x for x in PRIMARY if x in metrics), None)


def quality_threshold(refs: pd.DataFrame, metric: str, stage: str) -> float:
    """Halfway from the untrained generators to real data: on the log scale for ratio-scale
    metrics (the geometric mean of the two), on the metric's own scale otherwise."""
    untrained = rs.reference_value(refs, rs.UNTRAINED, stage, metric)
    floor = rs.reference_value(refs, rs.REAL_DATA, stage, metric)
    if not (math.isfinite(untrained) and math.isfinite(floor)):
        return math.nan
    if rs.log_scale(metric) and min(untrained, floor) > 0:
        return math.sqrt(untrained * floor)
    return (untrained + floor) / 2


@dataclass(frozen=True)
class TimeToQuality:
    strategy: str
    reached: int  # runs whose metric reached the threshold at some evaluation
    runs: int  # every finished or diverged run
    median_s: float  # training seconds, over every run (never reached = infinite)
    median_iters: float


def run_times_to_quality(
    runs: pd.DataFrame, evals: pd.DataFrame, refs: pd.DataFrame, metric: str
) -> pd.DataFrame:
    """One row per finished or diverged run: its strategy, and the training seconds
    (``seconds``) and generator iterations (``iters``) until ``metric`` first reached the quality
    threshold of its evaluation's stage; inf for a run that never did (censored at its budget)."""
    sign = rs.direction(metric)
    thresholds = {
        stage: quality_threshold(refs, metric, stage) for stage in ("intermediate", "final")
    }
    counted = runs[runs["status"].isin([gans.DONE, gans.DIVERGED])]
    rows = []
    for run in counted[["run_id", "strategy"]].to_dict("records"):
        mine = evals[(evals["run_id"] == run["run_id"]) & (evals["stage"] != INITIAL)]
        mine = mine[
            [
                rs.column_name(x, e) == metric
                for x, e in zip(mine["metric"], mine["feature_extractor"])
            ]
        ].sort_values("gen_iter")
        limit = mine["stage"].map(thresholds)
        good = mine[sign * (mine["value"] - limit) >= 0]
        first = good.iloc[0] if len(good) else None
        rows.append(
            {
                **run,
                "seconds": math.inf if first is None else float(first["elapsed_s"]),
                "iters": math.inf if first is None else float(first["gen_iter"]),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "strategy", "seconds", "iters"])


def time_to_quality(
    runs: pd.DataFrame, evals: pd.DataFrame, refs: pd.DataFrame, metric: str
) -> list[TimeToQuality]:
    """Per strategy: the median training seconds and generator iterations until ``metric`` first
    reaches the quality threshold (``run_times_to_quality``); runs that never do count as never."""
    times = run_times_to_quality(runs, evals, refs, metric)
    found = []
    for strategy in rs.strategy_order(times):
        mine = times[times["strategy"] == strategy]
        found.append(
            TimeToQuality(
                strategy,
                int(np.isfinite(mine["seconds"]).sum()),
                len(mine),
                float(np.median(mine["seconds"])),
                float(np.median(mine["iters"])),
            )
        )
    return found


def _mean_ci(seeds: rs.Seeds) -> str:
    if not len(seeds.finished):
        return "no finished seed"
    low, high = bootstrap_ci((seeds.finished,), np.mean)
    text = f"{rs.fmt(seeds.finished.mean())} {rs.interval_text(low, high)}"
    extra = f", {seeds.diverged_text()}" if seeds.diverged else ""
    return f"{text} (n = {seeds.n}{extra})"


def _ranking_line(values, metric, strategies, refs) -> str:
    word = "lower" if rs.direction(metric) < 0 else "higher"
    order = rs.ranking(values, metric, strategies)
    ranked = "; ".join(
        f"{i}. {s} {_mean_ci(rs.seeds_of(values, s, metric))}" for i, s in enumerate(order, 1)
    )
    line = (
        f"Final {rs.metric_name(metric)} ({word} is better; mean [95% CI] over seeds, ranked by "
        f"every seed with diverged ones last): {ranked}."
    )
    floor = rs.reference_value(refs, rs.REAL_DATA, rs.FINAL, metric)
    untrained = rs.reference_value(refs, rs.UNTRAINED, rs.FINAL, metric)
    if math.isfinite(floor) or math.isfinite(untrained):
        line += (
            f" For reference, real data scores {rs.fmt(floor)} and the untrained generators "
            f"{rs.fmt(untrained)}."
        )
    return line


def _difference(c: rs.Comparison) -> str:
    name = rs.metric_name(c.metric)
    if math.isfinite(c.ratio):
        size = f"{c.better}'s {name} is {_times(1 / c.ratio)} {c.worse}'s"
    elif math.isfinite(c.difference):
        word = "lower" if rs.direction(c.metric) < 0 else "higher"
        size = f"{c.better}'s {name} is {rs.fmt(c.difference)} {word} than {c.worse}'s"
    else:
        size = f"{c.better} ranks above {c.worse}"
    interval = rs.interval_text(c.low, c.high)
    detail = f"difference {rs.fmt(c.difference)} {interval}, p = {c.p:.2g}, {c.test}"
    return f"{size} ({detail})"


def _differences_line(found: list[rs.Comparison], metric: str) -> str:
    pairs = [c for c in found if c.metric == metric]
    groups = {
        rs.YES: "Significant",
        rs.BORDERLINE: "Borderline (the test and the interval disagree)",
        rs.NO: "Not significant",
        rs.TOO_FEW: "Too few seeds to tell",
    }
    parts = []
    for verdict, title in groups.items():
        chosen = [c for c in pairs if c.significant == verdict]
        if chosen:
            parts.append(f"{title}: " + "; ".join(_difference(c) for c in chosen) + ".")
    return " ".join(parts) or "No pair of strategies to compare."


def _times(ratio: float) -> str:
    """A ratio in a sentence: three significant digits are all a reader compares."""
    return f"{ratio:.3g}x"


def _modes_line(values: pd.DataFrame, strategies: list[str]) -> str | None:
    rows = values[values["metric"] == m.MODES_COVERED]
    if rows.empty or rows["value"].isna().all():
        return None
    parts = []
    for strategy in strategies:
        mine = rows[rows["strategy"] == strategy].sort_values("seed")
        if mine.empty:
            continue
        counts = ", ".join(str(int(v)) if math.isfinite(v) else "—" for v in mine["value"])
        collapsed = int((mine["value"] <= 1).sum())
        note = f" (one mode or none in {collapsed} of {len(mine)} seeds)" if collapsed else ""
        parts.append(f"{strategy} {counts}{note}")
    return "Modes covered per seed (final, seed order): " + "; ".join(parts) + "."


def _quality_line(found: list[TimeToQuality], metric: str, refs: pd.DataFrame) -> str | None:
    threshold = quality_threshold(refs, metric, rs.FINAL)
    if not math.isfinite(threshold) or not found:
        return None
    word = "≤" if rs.direction(metric) < 0 else "≥"
    parts = []
    for t in found:
        if t.reached == 0:
            parts.append(f"{t.strategy} never ({t.runs} runs)")
            continue
        median = (
            f"median {rs.fmt(t.median_s)} s ({int(t.median_iters)} generator iterations)"
            if math.isfinite(t.median_s)
            else "median run never"
        )
        parts.append(f"{t.strategy} in {t.reached} of {t.runs} runs, {median}")
    scale = ", on a log scale" if rs.log_scale(metric) else ""
    return (
        f"Time to {rs.metric_name(metric)} {word} {rs.fmt(threshold)} (halfway from the untrained "
        f"generators to real data{scale}), training seconds over every run: "
        + "; ".join(parts)
        + "."
    )


def _cost_line(runs: pd.DataFrame, strategies: list[str]) -> str | None:
    timed = (
        runs[runs["train_s"].notna() & (runs["gen_iters"] > 0)]
        if "train_s" in runs
        else runs.iloc[:0]
    )
    if timed.empty:
        return None
    per_iter = (timed["train_s"] / timed["gen_iters"]).groupby(timed["strategy"]).mean()
    cheapest = per_iter.idxmin()
    parts = [
        f"{s} {rs.fmt(per_iter[s] * 1000)} ms"
        + ("" if s == cheapest else f" ({_times(per_iter[s] / per_iter[cheapest])} {cheapest}'s)")
        for s in strategies
        if s in per_iter
    ]
    return (
        "Cost per generator iteration (training only, critic steps included): "
        + "; ".join(parts)
        + f". In all {rs.fmt(timed['train_s'].sum())} s of training and "
        f"{rs.fmt(timed['eval_s'].sum())} s of evaluation for {len(timed)} runs."
    )


def _budget_line(runs: pd.DataFrame, values: pd.DataFrame, metric: str, strategies, refs) -> str:
    iters = runs["gen_iters"].dropna()
    budget = f"{int(iters.max()):,} generator iterations per run" if len(iters) else "the budget"
    floor = rs.reference_value(refs, rs.REAL_DATA, rs.FINAL, metric)
    best = rs.ranking(values, metric, strategies)[:1]
    finished = rs.seeds_of(values, best[0], metric).finished if best else np.array([])
    if not (math.isfinite(floor) and floor > 0 and len(finished)):
        return f"Budget: {budget}; no real-data floor to compare with."
    gap = finished.mean() / floor if rs.direction(metric) < 0 else floor / finished.mean()
    return (
        f"Budget: {budget}. The best strategy's mean {rs.metric_name(metric)} is "
        f"{_times(gap)} real data's, so this ranks the strategies early in training at this "
        f"size; it does not say where they converge."
    )


def answer(
    runs: pd.DataFrame,
    values: pd.DataFrame,
    found: list[rs.Comparison],
    refs: pd.DataFrame,
    quality: list[TimeToQuality],
    metric: str | None,
) -> list[str]:
    """The answer for one dataset, one plain line per point."""
    if metric is None:
        return ["No primary metric (W1 or FID) was computed for this dataset."]
    strategies = rs.strategy_order(runs)
    lines = [
        _ranking_line(values, metric, strategies, refs),
        _differences_line(found, metric),
        _modes_line(values, strategies),
        _quality_line(quality, metric, refs),
        _cost_line(runs, strategies),
        _budget_line(runs, values, metric, strategies, refs),
    ]
    return [line for line in lines if line]
