"""The report's sweep section: how the final quality of a sweep's runs depends on each swept value,
and the per-strategy distribution of outcomes over the sampled settings, diverged ones included.

A sweep (``[sweep]`` in a suite) makes one run per sampled setting and seed; the runs table holds
the sample's index (``sweep_sample``) and each drawn value (``swept_NAME``). Everything here is a
function of the tables.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import gans
from benchmarks import report_stats as rs
from benchmarks.report_figures import Drawing, Figure, slug, styled
from benchmarks.store import SWEEP_SAMPLE, SWEPT_PREFIX

MAX_CATEGORIES = 6  # a swept value with at most this many distinct values is drawn as categories


def swept_columns(runs: pd.DataFrame) -> list[str]:
    """The runs table's drawn-value columns, in table order; empty when the suite is no sweep."""
    if SWEEP_SAMPLE not in runs or runs[SWEEP_SAMPLE].isna().all():
        return []
    return [c for c in runs.columns if c.startswith(SWEPT_PREFIX) and runs[c].notna().any()]


def _category(value) -> str:
    """A drawn value as a category label: 4, not 4.0 (an integer column with NaN is float)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def outcomes(runs: pd.DataFrame, metric: str, threshold: float) -> pd.DataFrame:
    """One row per finished or diverged sweep run: its final ``metric`` (NaN when diverged) and
    whether it trained (finished with the metric at least as good as ``threshold``)."""
    counted = runs[runs["status"].isin([gans.DONE, gans.DIVERGED]) & runs[SWEEP_SAMPLE].notna()]
    frame = counted.copy()
    done = frame["status"] == gans.DONE
    frame["quality"] = frame[metric].where(done) if metric in frame else math.nan
    sign = rs.direction(metric) or -1
    frame["trained"] = done & (sign * (frame["quality"] - threshold) >= 0)
    return frame


def summary_table(frame: pd.DataFrame, runs: pd.DataFrame, metric: str, threshold) -> rs.Table:
    """Per strategy: settings, diverged and failed runs, the spread of the final metric, and the
    share of settings that trained."""
    name = rs.metric_name(metric)
    table = rs.Table(
        ["strategy", "runs", "diverged", "failed", f"median {name}", f"{name} 25-75%"]
        + [f"trained ({name} {'≤' if rs.direction(metric) <= 0 else '≥'} {rs.fmt(threshold)})"]
    )
    for strategy in rs.strategy_order(runs):
        mine = frame[frame["strategy"] == strategy]
        failed = int(((runs["strategy"] == strategy) & (runs["status"] == rs.FAILED)).sum())
        quality = rs.finite(mine["quality"])
        quartiles = np.percentile(quality, [25, 75]) if len(quality) else (math.nan, math.nan)
        trained = int(mine["trained"].sum())
        table.add(
            strategy,
            len(mine),
            int((mine["status"] == gans.DIVERGED).sum()),
            failed,
            float(np.median(quality)) if len(quality) else math.nan,
            f"{rs.fmt(quartiles[0])} to {rs.fmt(quartiles[1])}",
            f"{trained} of {len(mine)} ({trained / len(mine):.0%})" if len(mine) else "—",
        )
    return table


def figures(dataset, frame, metric, threshold, colours) -> list[Drawing]:
    """Final quality against each swept value (points and a LOWESS smoother per strategy), and
    per strategy the distribution over settings (box and points, diverged ones counted)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    columns = [c for c in frame.columns if c.startswith(SWEPT_PREFIX) and frame[c].notna().any()]
    name = rs.metric_name(metric)
    drawn = frame[np.isfinite(frame["quality"].astype(float))]
    drawings = []
    fig, axes = plt.subplots(
        1, len(columns), figsize=(3.2 * len(columns), 3.2), sharey=True, squeeze=False
    )
    for ax, column in zip(axes[0], columns, strict=True):
        values = drawn[column]
        numeric = pd.api.types.is_numeric_dtype(values)
        if not numeric or values.nunique() <= MAX_CATEGORIES:
            order = sorted(frame[column].dropna().unique(), key=lambda v: (str(type(v)), v))
            sns.stripplot(
                drawn,
                x=drawn[column].map(_category),
                y="quality",
                hue="strategy",
                order=[_category(o) for o in order],
                palette=colours,
                dodge=True,
                jitter=False,
                ax=ax,
                legend=False,
            )
        else:
            spread = values.max() / values.min() if values.min() > 0 else 0
            for strategy, rows in drawn.groupby("strategy", sort=False):
                if rows[column].notna().sum() == 0:
                    continue
                x = np.log10(rows[column]) if spread > 20 else rows[column]
                sns.regplot(
                    x=x,
                    y=rows["quality"],
                    lowess=len(rows) >= 3,
                    fit_reg=len(rows) >= 3,
                    color=colours[strategy],
                    scatter_kws={"s": 14},
                    ax=ax,
                )
            ax.set_xlabel(f"log10 {column}" if spread > 20 else column)
        ax.set_xlabel(ax.get_xlabel().replace(SWEPT_PREFIX, ""))
        ax.set_ylabel(name)
        if math.isfinite(threshold):
            ax.axhline(threshold, color="0.4", linestyle=":", linewidth=1)
        if rs.log_scale(metric):
            ax.set_yscale("log")
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="") for c in colours.values()]
    fig.legend(handles, list(colours), loc="upper left", bbox_to_anchor=(1, 0.95))
    drawings.append(
        Drawing(
            slug("sweep", dataset, "values"),
            f"{dataset}: final {name} against each swept value",
            f"One point per finished run; a line per strategy is a LOWESS smoother (numeric values "
            f"with more than {MAX_CATEGORIES} distinct values; log10 axis where they span more "
            "than a factor 20). The dotted line is the quality threshold. Diverged runs have no "
            "final value and are counted in the next figure.",
            fig,
        )
    )
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = {}
    for strategy, rows in frame.groupby("strategy", sort=False):
        diverged = int((rows["status"] == gans.DIVERGED).sum())
        trained = int(rows["trained"].sum())
        labels[strategy] = f"{strategy}\n{trained} of {len(rows)} trained\n{diverged} diverged"
    shown = drawn.assign(label=drawn["strategy"].map(labels))
    order = [labels[s] for s in colours if s in labels]
    sns.boxplot(shown, x="label", y="quality", order=order, ax=ax, fill=False, showfliers=False)
    sns.swarmplot(
        shown,
        x="label",
        y="quality",
        hue="strategy",
        order=order,
        palette=colours,
        ax=ax,
        legend=False,
        size=3,
    )
    ax.set_xlabel("")
    ax.set_ylabel(f"final {name}")
    if math.isfinite(threshold):
        ax.axhline(threshold, color="0.4", linestyle=":", linewidth=1)
    if rs.log_scale(metric):
        ax.set_yscale("log")
    drawings.append(
        Drawing(
            slug("sweep", dataset, "outcomes"),
            f"{dataset}: final {name} over the sampled settings, per strategy",
            "Box and points over every finished run of the sweep; the labels count the settings "
            "that trained (the threshold, dotted: halfway from the untrained generators to real "
            "data) and the runs that diverged (not drawn).",
            fig,
        )
    )
    return drawings


def section(dataset, runs, refs, metric, threshold, colours) -> dict | None:
    """The sweep section of one dataset, or None when its runs are no sweep."""
    if metric is None or not swept_columns(runs):
        return None
    frame = outcomes(runs, metric, threshold)
    style, context = styled()
    with style, context:
        rendered: list[Figure] = [
            d.render() for d in figures(dataset, frame, metric, threshold, colours)
        ]
    return {
        "design": runs["sweep"].dropna().iloc[0].split("; ") if "sweep" in runs else [],
        "summary": summary_table(frame, runs, metric, threshold),
        "figures": rendered,
    }
