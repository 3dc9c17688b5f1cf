"""The report's charts: quality per seed and over training, critic curves, time per iteration.

Quality plots carry reference lines (real data, an untrained generator) so a value reads at a
glance. ``dataset_figures`` and ``suite_figures`` assemble every figure of the report, the images of
``report_images`` included, in reading order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker

import gans
from benchmarks import report_images as images
from benchmarks.report_figures import Drawing, Figure, slug, styled
from benchmarks.report_stats import (
    LOG_SCALE,
    REAL_DATA,
    REFERENCE_LABELS,
    UNTRAINED,
    finite,
    metric_label,
    ordered_metrics,
)
from benchmarks.store import FAILED
from benchmarks.store import INCEPTION_SUFFIX as SUFFIX
from gans.metrics_image import INCEPTION

PANEL = 3.6  # inches per subplot
RAW_ALPHA = 0.25  # raw values behind their smoothed line
# One line style per reference, the same in every figure; the legend names them.
REFERENCES = {
    REAL_DATA: {"color": "black", "linestyle": "--"},
    UNTRAINED: {"color": "grey", "linestyle": "-."},
}
REFERENCE_NOTES = {
    REAL_DATA: "black dashed = real data scored in place of generated samples (the floor)",
    UNTRAINED: "grey dash-dot = the runs' generators before training (mean over runs)",
}
THRESHOLD = {"color": "dimgrey", "linestyle": ":"}
# Above this max/min ratio a ratio-scale metric (LOG_SCALE) gets a log y-axis: FID falls from
# ~400 untrained to ~1 on real data, and a linear axis would flatten all but the first points.
LOG_SPAN = 30
SEED_SPREAD = 0.3  # width of a strategy's row of per-seed points on the categorical axis
DONE_MARKER = {"marker": "o", "s": 45, "edgecolors": "black", "linewidths": 0.6}
DIVERGED_MARKER = {"marker": "X", "s": 80, "facecolors": "none", "linewidths": 1.5}


def _axes(n: int, ncols: int | None = None, height: float = PANEL):
    ncols = ncols or min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(PANEL * 1.3 * ncols, height * nrows),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _strategy_handles(colours) -> list:
    return [plt.Line2D([], [], color=c, lw=2.5, label=s) for s, c in colours.items()]


def _legend(fig, axes, handles, below=()) -> None:
    """One legend above the panels (strategies) and, when given, one below (reference lines)."""
    for ax in axes:
        if ax.get_legend():
            ax.get_legend().remove()
    for where, entries in (("upper", handles), ("lower", below)):
        if entries:
            fig.legend(
                handles=entries, loc=f"outside {where} center", ncol=len(entries), frameon=False
            )


def _threshold(threshold) -> dict | None:
    """The threshold as a dict, whether given as a mapping or an object with the same fields."""
    if threshold is None or isinstance(threshold, Mapping):
        return threshold
    return {key: getattr(threshold, key) for key in ("metric", "value", "label")}


def _reference_values(refs: pd.DataFrame, metric: str, stage: str) -> pd.DataFrame:
    if refs.empty:
        return refs
    rows = refs[(refs["metric"] == metric) & (refs["stage"] == stage) & refs["value"].notna()]
    return rows.sort_values("reference", key=lambda r: r.map(list(REFERENCES).index))


def _reference_lines(ax, refs: pd.DataFrame, metric: str, stage: str, threshold=None) -> set:
    """Dashed lines at the references' values (and the threshold's); returns their labels.

    A horizontal line is part of the axis' data limits, so the y-range always includes it.
    """
    drawn = set()
    for row in _reference_values(refs, metric, stage).itertuples():
        ax.axhline(row.value, lw=1.3, zorder=1.5, **REFERENCES[row.reference])
        drawn.add(row.reference)
    if threshold and threshold["metric"] == metric:
        ax.axhline(threshold["value"], lw=1.5, zorder=1.5, **THRESHOLD)
        drawn.add(threshold["label"])
    return drawn


def _line_handles(drawn: set, threshold) -> list:
    handles = [
        plt.Line2D([], [], lw=1.3, label=REFERENCE_LABELS[name], **style)
        for name, style in REFERENCES.items()
        if name in drawn
    ]
    if threshold and threshold["label"] in drawn:
        handles.append(plt.Line2D([], [], lw=1.5, label=threshold["label"], **THRESHOLD))
    return handles


def _y_scale(ax, metric: str, values) -> bool:
    """A log y-axis for a ratio-scale metric whose values span more than LOG_SPAN; True if so."""
    values = finite(values)
    log = (
        metric.removesuffix(SUFFIX) in LOG_SCALE
        and len(values) > 0
        and values.min() > 0
        and values.max() / values.min() > LOG_SPAN
    )
    if log:
        ax.set_yscale("log")
        # Ticks at 1, 2, 5 times powers of ten, written as plain numbers: 20 reads faster
        # than 2x10^1.
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    return log


def _lines_caption(drawn: set, stage: str, threshold, log: list[str]) -> str:
    parts = []
    notes = [note for name, note in REFERENCE_NOTES.items() if name in drawn]
    if notes:
        parts.append(
            f"Horizontal lines: references evaluated like the {stage} evaluations (same sample "
            f"counts): {'; '.join(notes)}."
        )
    if threshold and threshold["label"] in drawn:
        parts.append(f"Dotted: {threshold['label']} ({metric_label(threshold['metric'])}).")
    if log:
        parts.append(
            f"Log y-axis for {', '.join(log)} (a ratio-scale metric whose values, lines "
            f"included, span more than {LOG_SPAN}x); the other panels are linear."
        )
    return " ".join(parts)


CURVE_AXES = (("gen_iter", "generator iterations"), ("wall_s", "training seconds"))


def metric_curves(dataset: str, evals: pd.DataFrame, colours, refs, threshold) -> list[Drawing]:
    """Each evaluated metric vs generator iterations and vs wall-clock: mean and 95% CI band."""
    if evals.empty:
        return []
    evals = evals[evals["value"].notna()]
    inception = evals["feature_extractor"] == INCEPTION
    # Inception and classifier features give different numbers: never one line through both.
    evals = evals.assign(metric=evals["metric"].where(~inception, evals["metric"] + SUFFIX))
    # Metrics measured only at the end (IS, precision, recall) are in the per-seed figure.
    points = evals.groupby("metric")["gen_iter"].nunique()
    metrics = ordered_metrics(points.index[points > 1])
    if not metrics:
        return []
    evals = evals.assign(
        wall_s=evals.groupby(["strategy", "gen_iter"])["elapsed_s"].transform("mean")
    )
    threshold = _threshold(threshold)
    drawings = []
    for x, label in CURVE_AXES:
        fig, axes = _axes(len(metrics))
        # Time to a quality level reads off the seconds axis: the threshold goes there.
        line = threshold if x == "wall_s" else None
        drawn, log = set(), []
        for ax, metric in zip(axes, metrics, strict=True):
            rows = evals[evals["metric"] == metric]
            sns.lineplot(
                rows,
                x=x,
                y="value",
                hue="strategy",
                palette=colours,
                hue_order=list(colours),
                errorbar=("ci", 95),
                seed=0,
                marker="o",
                ax=ax,
            )
            drawn |= _reference_lines(ax, refs, metric, "intermediate", line)
            ys = [y for artist in ax.lines for y in artist.get_ydata()]
            if _y_scale(ax, metric, ys):
                log.append(metric)
            ax.set(title=metric_label(metric), xlabel=label, ylabel=metric)
        _legend(fig, axes, _strategy_handles(colours), _line_handles(drawn, line))
        caption = (
            "Mean over seeds, band = 95% bootstrap CI (seaborn, seed 0). Wall-clock x is the "
            "mean over seeds at each evaluation point. The last point is the final evaluation, "
            "on more samples than the intermediate ones (FID and KID depend on sample count). "
            + _lines_caption(drawn, "intermediate", line, log)
        )
        drawings.append(
            Drawing(slug(dataset, "metrics-vs", x), f"{dataset}: metrics vs {label}", caption, fig)
        )
    return drawings


def _smoothed(ax, frame: pd.DataFrame, column: str, colours) -> None:
    for strategy, rows in frame.groupby("strategy", sort=False):
        mean = rows.groupby("gen_iter")[column].mean().dropna()
        if mean.empty:
            continue
        window = max(1, len(mean) // 25)
        colour = colours[strategy]
        ax.plot(mean.index, mean.values, color=colour, alpha=RAW_ALPHA, lw=1)
        smooth = mean.rolling(window, center=True, min_periods=1).mean()
        ax.plot(
            smooth.index, smooth.values, color=colour, lw=2, marker="o" if len(mean) < 20 else None
        )


def critic_curves(dataset: str, curves: pd.DataFrame, colours, runs: pd.DataFrame) -> list[Drawing]:
    """Both losses, the W estimate, the held-out critic loss and the critic's regularisers vs
    generator iterations. The regularisers' panels are titled by the pieces the runs recorded."""

    def pieces(column: str, fallback: str) -> str:
        names = sorted(set(runs.get(column, pd.Series(dtype=object)).dropna()) - {""})
        return ", ".join(names) or fallback

    panels = [
        ("critic_loss", "critic loss (without the penalty)"),
        ("g_loss", "generator loss"),
        ("w_estimate", "Wasserstein estimate (-critic loss)"),
        ("heldout_critic_loss", "held-out critic loss"),
        ("penalty", f"penalty, weighted ({pieces('penalty', 'penalty')})"),
        ("grad_norm", f"critic gradient norm where {pieces('penalty', 'the penalty')} looks"),
        ("constraint_active", f"critic weights at the boundary of {pieces('constraint', 'it')}"),
    ]
    panels = [(c, t) for c, t in panels if c in curves and curves[c].notna().any()]
    if not panels:
        return []
    fig, axes = _axes(len(panels))
    for ax, (column, title) in zip(axes, panels, strict=True):
        _smoothed(ax, curves, column, colours)
        ax.set(title=title, xlabel="generator iterations", ylabel=column)
    _legend(fig, axes, _strategy_handles(colours))
    caption = (
        "Mean over seeds per generator iteration: faint line raw, solid line a centred moving "
        "average (window = 1/25 of the run). A strategy without the quantity has no line; "
        "the losses of different strategies (cross-entropy, Wasserstein, ...) are on different "
        "scales: compare each line's course, not its level."
    )
    return [
        Drawing(
            slug(dataset, "critic"), f"{dataset}: losses and critic during training", caption, fig
        )
    ]


def _seed_x(rows: pd.DataFrame, order: list[str]) -> pd.Series:
    """Each row's x: its strategy's slot, spread by seed so that no point hides another.

    Fixed offsets, not seaborn's jitter, which draws from numpy's global generator.
    """
    by = rows.groupby("strategy")["seed"]
    rank, count = by.rank(method="first") - 1, by.transform("size")
    spread = (rank / (count - 1).clip(lower=1) - 0.5).where(count > 1, 0.0)
    return rows["strategy"].map({s: i for i, s in enumerate(order)}) + SEED_SPREAD * spread


def _seed_points(ax, rows: pd.DataFrame, x: pd.Series, y: str, colours, marker: dict) -> None:
    if rows.empty:
        return
    colour = [colours[s] for s in rows["strategy"]]
    paint = {"edgecolors": colour} if marker.get("facecolors") == "none" else {"c": colour}
    ax.scatter(x[rows.index], rows[y], zorder=3, **paint, **marker)


def _strategy_axis(ax, order: list[str]) -> None:
    ax.set_xticks(range(len(order)), order)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_xlabel("")


def final_spread(dataset: str, per_seed: pd.DataFrame, colours, refs) -> list[Drawing]:
    """Per-seed final metrics over a box per strategy; diverged seeds apart, at their last value."""
    shown = per_seed[(per_seed["status"] != FAILED) & per_seed["value"].notna()]
    metrics = ordered_metrics(shown["metric"].unique())
    if not metrics:
        return []
    order = [s for s in colours if s in set(shown["strategy"])]
    fig, axes = _axes(len(metrics))
    drawn, log = set(), []
    for ax, metric in zip(axes, metrics, strict=True):
        rows = shown[shown["metric"] == metric].sort_values(["strategy", "seed", "run_id"])
        done = rows[rows["status"] == gans.DONE]
        diverged = rows[rows["status"] == gans.DIVERGED]
        if not done.empty:
            sns.boxplot(
                **_per_strategy(done, "value", order, colours, ax),
                boxprops={"alpha": 0.35},
                showfliers=False,
            )
        x = _seed_x(rows, order)
        _seed_points(ax, done, x, "value", colours, DONE_MARKER)
        _seed_points(ax, diverged, x, "value", colours, DIVERGED_MARKER)
        drawn |= _reference_lines(ax, refs, metric, "final")
        values = [*rows["value"], *_reference_values(refs, metric, "final")["value"]]
        if _y_scale(ax, metric, values):
            log.append(metric)
        _strategy_axis(ax, order)
        ax.set(title=metric_label(metric), ylabel=metric)
    handles = [_marker_handle("finished seed", DONE_MARKER)]
    if (shown["status"] == gans.DIVERGED).any():
        label = "diverged seed: last evaluation before diverging"
        handles.append(_marker_handle(label, DIVERGED_MARKER))
    _legend(fig, axes, handles, _line_handles(drawn, None))
    caption = (
        "One point per seed. Circles: finished runs, with a box of their quartiles and median "
        "(whiskers to the furthest point within 1.5 IQR). Hollow X: a diverged run at its last "
        "evaluation before diverging, an intermediate one on fewer samples; it is not in the "
        "box. " + _lines_caption(drawn, "final", None, log)
    )
    unseen = _diverged_without_values(per_seed)
    if unseen:
        caption += f" {unseen} diverged run(s) had no evaluation before diverging: not drawn."
    return [
        Drawing(slug(dataset, "final-per-seed"), f"{dataset}: final metrics per seed", caption, fig)
    ]


def _marker_handle(label: str, marker: dict):
    """A legend entry drawn like the scatter ``marker``, in grey: it stands for every strategy."""
    hollow = marker.get("facecolors") == "none"
    return plt.Line2D(
        [],
        [],
        ls="",
        label=label,
        marker=marker["marker"],
        markersize=marker["s"] ** 0.5,  # scatter sizes are areas, Line2D's are widths
        markerfacecolor="none" if hollow else "grey",
        markeredgecolor="grey" if hollow else marker["edgecolors"],
        markeredgewidth=marker["linewidths"],
    )


def _diverged_without_values(per_seed: pd.DataFrame) -> int:
    diverged = per_seed[per_seed["status"] == gans.DIVERGED]
    has_value = diverged.groupby("run_id")["value"].apply(lambda v: v.notna().any())
    return int((~has_value).sum())


def _per_strategy(data: pd.DataFrame, y: str, order: list[str], colours, ax) -> dict:
    """Arguments of a seaborn categorical plot with one strategy per x position, in its colour."""
    return dict(
        data=data,
        x="strategy",
        y=y,
        hue="strategy",
        order=order,
        hue_order=order,
        palette=colours,
        ax=ax,
        legend=False,
    )


def time_per_iteration(runs: pd.DataFrame, colours) -> list[Drawing]:
    """Training seconds per generator iteration, per strategy, one panel per dataset."""
    timed = runs.assign(s_per_iter=runs.get("train_s", np.nan) / runs.get("gen_iters", np.nan))
    timed = timed[np.isfinite(timed["s_per_iter"].astype(float))]
    if timed.empty:
        return []
    datasets = list(dict.fromkeys(timed["dataset"]))
    fig, axes = _axes(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = timed[timed["dataset"] == dataset].sort_values(["strategy", "seed", "run_id"])
        order = [s for s in colours if s in set(rows["strategy"])]
        sns.barplot(
            **_per_strategy(rows, "s_per_iter", order, colours, ax), errorbar=None, alpha=0.5
        )
        _seed_points(ax, rows, _seed_x(rows, order), "s_per_iter", colours, DONE_MARKER)
        _strategy_axis(ax, order)
        ax.set(title=dataset, ylabel="seconds / generator iteration")
    caption = (
        "Bar = mean over runs, points = runs. Includes the critic steps of each generator "
        "iteration (n_critic), excludes evaluation."
    )
    return [Drawing("time-per-iteration", "Time per generator iteration", caption, fig)]


def dataset_figures(
    dataset, runs, curves, evals, run_dirs: dict[str, Path], colours, refs, per_seed, threshold
) -> list[Figure]:
    """Every figure of one dataset, in reading order.

    Args:
        dataset: the dataset's name, for titles and file names.
        runs: the dataset's rows of the runs table (sample grids, toy views).
        curves: the dataset's training curves.
        evals: the dataset's evaluations (metric curves).
        run_dirs: each run's results directory (holding its samples and toy.npz) by run id.
        colours: strategy -> colour, from ``palette``.
        refs: reference values, columns reference ("real data", "untrained"), stage
            ("intermediate", "final"), metric (with the "_inception" suffix for Inception
            features) and value; may be empty or lack metrics.
        per_seed: one row per (run, metric) of the final metrics: run_id, strategy, seed,
            status, metric, value (a diverged run's last evaluation, possibly NaN) and counted.
        threshold: None, or a mapping (or object) with metric, value and label: the quality
            threshold drawn on the vs-seconds figure.

    Returns:
        The figures, rendered.
    """
    style, context = styled()
    with style, context:
        drawings = [
            *final_spread(dataset, per_seed, colours, refs),
            *metric_curves(dataset, evals, colours, refs, threshold),
            *critic_curves(dataset, curves, colours, runs),
            *images.sample_grids(dataset, runs, run_dirs, colours),
            *images.toy_views(dataset, runs, run_dirs, colours),
        ]
        return [d.render() for d in drawings]


def suite_figures(runs, colours) -> list[Figure]:
    style, context = styled()
    with style, context:
        return [d.render() for d in time_per_iteration(runs, colours)]
