"""The report's figures, drawn with seaborn on matplotlib's Agg backend and returned as PNG bytes.

One style everywhere, and one colour per strategy, fixed by the strategy's position in the suite,
so a strategy looks the same in every figure of a report. Quality plots carry reference lines
(real data, an untrained generator) so a value reads at a glance. Every figure function returns
``Drawing``s, the matplotlib figure not yet rendered, so tests can read its artists.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402

import gans  # noqa: E402
from benchmarks.execute import FAILED  # noqa: E402
from benchmarks.execute import INCEPTION_SUFFIX as SUFFIX  # noqa: E402
from benchmarks.report_stats import (  # noqa: E402
    LOG_SCALE,
    REAL_DATA,
    REFERENCE_LABELS,
    UNTRAINED,
    finite,
    metric_label,
    ordered_metrics,
)
from gans.metrics_image import INCEPTION  # noqa: E402

STYLE = {"style": "whitegrid", "context": "notebook", "font_scale": 0.9}
DPI = 90  # about 1000 px wide: sharp on a laptop, small enough to embed many
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
# An 8x8 MNIST grid is 242 px: at 3.6 in (324 px at DPI) every pixel is drawn, none dropped.
SAMPLE_CELL = 3.6
SAMPLE_COLUMNS = 3  # grids per figure row (about 1000 px); further seeds or iterations wrap


@dataclass(frozen=True)
class Figure:
    name: str  # file name stem: [a-z0-9-] only
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Drawing:
    """A figure drawn but not yet rendered: ``fig`` is matplotlib's, for tests to inspect."""

    name: str
    title: str
    caption: str
    fig: matplotlib.figure.Figure

    def render(self) -> Figure:
        return Figure(self.name, self.title, self.caption, _png(self.fig))


def palette(strategies: list[str]) -> dict[str, tuple]:
    colours = sns.color_palette("colorblind", max(len(strategies), 1))
    return dict(zip(strategies, colours, strict=True))


def slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", str(p).lower()).strip("-") for p in parts)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # No software version or date in the file: the same tables give the same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


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


def critic_curves(dataset: str, curves: pd.DataFrame, colours) -> list[Drawing]:
    """W estimate, held-out critic loss and the critic regularisers vs generator iterations."""
    panels = [
        ("w_estimate", "Wasserstein estimate (-critic loss)"),
        ("heldout_critic_loss", "held-out critic loss"),
        ("penalty", "gradient penalty (wgan-gp)"),
        ("grad_norm", "grad norm at interpolates"),
        ("constraint_active", "critic weights at clip boundary"),
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
        "held-out losses of the GAN (cross-entropy) and Wasserstein critics are on different "
        "scales."
    )
    return [Drawing(slug(dataset, "critic"), f"{dataset}: critic during training", caption, fig)]


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


def _sample_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "samples").glob("*.png"))


def _image_grid(title, rows: list[tuple[str, list[tuple[str, Path]]]], colours):
    """One figure row per SAMPLE_COLUMNS grids of a strategy; its further grids wrap below."""
    lines = [
        (name, cells[start : start + SAMPLE_COLUMNS])
        for name, cells in rows
        for start in range(0, len(cells), SAMPLE_COLUMNS)
    ]
    ncols = max(len(cells) for _, cells in lines)
    fig, axes = plt.subplots(
        len(lines),
        ncols,
        figsize=(SAMPLE_CELL * ncols, (SAMPLE_CELL + 0.3) * len(lines)),
        squeeze=False,
        layout="constrained",
    )
    for ax_row, (name, cells) in zip(axes, lines):
        for c, ax in enumerate(ax_row):
            ax.axis("off")
            if c < len(cells):
                label, path = cells[c]
                ax.imshow(plt.imread(path), cmap="gray", interpolation="nearest")
                ax.set_title(f"{name}, {label}", fontsize=10, color=colours[name])
    fig.suptitle(title)
    return fig


def sample_grids(dataset: str, runs: pd.DataFrame, suite_dir: Path, colours) -> list[Drawing]:
    """Final samples per strategy and seed, and each strategy's progression over evaluations."""
    done = runs[runs["status"] != FAILED]
    finals, strips = [], []
    for strategy in [s for s in colours if s in set(done["strategy"])]:
        rows = done[done["strategy"] == strategy].sort_values("seed")
        cells = [(f"seed {r.seed}", _sample_files(suite_dir / r.run_id)) for r in rows.itertuples()]
        cells = [(label, files) for label, files in cells if files]
        if not cells:
            continue
        finals.append((strategy, [(label, files[-1]) for label, files in cells]))
        label, files = cells[0]
        strips.append((f"{strategy} {label}", [(f"iter {int(f.stem)}", f) for f in files]))
    if not finals:
        return []
    strip_colours = {name: colours[name.split(" ")[0]] for name, _ in strips}
    wrap = f"at most {SAMPLE_COLUMNS} grids a row, further ones on the next row"
    return [
        Drawing(
            slug(dataset, "samples-final"),
            f"{dataset}: final samples",
            "The last sample grid of every strategy and seed (diverged runs: their last "
            f"evaluation before diverging), {wrap}.",
            _image_grid(f"{dataset}: final samples", finals, colours),
        ),
        Drawing(
            slug(dataset, "samples-progression"),
            f"{dataset}: progression",
            f"Sample grids at each evaluation point, for each strategy's first seed, {wrap}.",
            _image_grid(f"{dataset}: progression", strips, strip_colours),
        ),
    ]


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as toy:
        return {key: toy[key] for key in toy.files}


def toy_views(dataset: str, runs: pd.DataFrame, suite_dir: Path, colours) -> list[Drawing]:
    """Generated over real points on the critic's value surface (WGAN-GP paper, Figure 1)."""
    done = runs[runs["status"] == gans.DONE].sort_values(["strategy", "seed", "run_id"])
    toys = {
        (r.strategy, r.seed): _load(suite_dir / r.run_id / "toy.npz")
        for r in done.itertuples()
        if (suite_dir / r.run_id / "toy.npz").exists()
    }
    if not toys:
        return []
    seeds = sorted({seed for _, seed in toys})
    strategies = [s for s in colours if s in {strategy for strategy, _ in toys}]
    # Runs of a dataset share the real test points, hence the square; the union if not.
    lo = min(min(t["xs"].min(), t["ys"].min()) for t in toys.values())
    hi = max(max(t["xs"].max(), t["ys"].max()) for t in toys.values())
    fig, axes = plt.subplots(
        len(strategies),
        len(seeds),
        figsize=(3.4 * len(seeds), 3.6 * len(strategies)),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.axis("off")
    for (strategy, seed), toy in toys.items():
        ax = axes[strategies.index(strategy)][seeds.index(seed)]
        ax.axis("on")
        ax.contourf(toy["xs"], toy["ys"], toy["critic"], levels=20, cmap="Greys", alpha=0.45)
        ax.contour(toy["xs"], toy["ys"], toy["critic"], levels=10, colors="grey", linewidths=0.4)
        fake = toy["fake"]
        inside = ((fake >= lo) & (fake <= hi)).all(axis=1)
        ax.scatter(*toy["real"].T, s=3, color="black", alpha=0.6)
        ax.scatter(*fake[inside].T, s=4, color=colours[strategy])
        outside = int((~inside).sum())
        title = f"{strategy}, seed {seed}" + (f"\n{outside} points outside" if outside else "")
        ax.set(title=title, xticks=[], yticks=[], xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
    caption = (
        "Black: real points; strategy colour: generated points; grey levels and contour "
        "lines: the critic's value surface (darker = higher). Every panel shows the same "
        "square, the grid the critic was evaluated on: the real test points with a 10% margin "
        "(the union of the runs' grids, should they differ). "
        "Generated points outside it are left out and counted in the panel's title. Grey levels "
        "are scaled per panel (the critics' scales differ): compare shades within a panel, not "
        "across panels."
    )
    return [Drawing(slug(dataset, "toy"), f"{dataset}: samples and critic surface", caption, fig)]


def _styled():
    return (
        sns.axes_style(STYLE["style"]),
        sns.plotting_context(STYLE["context"], font_scale=STYLE["font_scale"]),
    )


def dataset_figures(
    dataset, runs, curves, evals, suite_dir: Path, colours, refs, per_seed, threshold
) -> list[Figure]:
    """Every figure of one dataset, in reading order.

    Args:
        dataset: the dataset's name, for titles and file names.
        runs: the dataset's rows of the runs table (sample grids, toy views).
        curves: the dataset's training curves.
        evals: the dataset's evaluations (metric curves).
        suite_dir: the suite's results directory, holding each run's samples and toy.npz.
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
    style, context = _styled()
    with style, context:
        drawings = [
            *final_spread(dataset, per_seed, colours, refs),
            *metric_curves(dataset, evals, colours, refs, threshold),
            *critic_curves(dataset, curves, colours),
            *sample_grids(dataset, runs, suite_dir, colours),
            *toy_views(dataset, runs, suite_dir, colours),
        ]
        return [d.render() for d in drawings]


def suite_figures(runs, colours) -> list[Figure]:
    style, context = _styled()
    with style, context:
        return [d.render() for d in time_per_iteration(runs, colours)]
