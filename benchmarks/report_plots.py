"""The report's figures, drawn with seaborn on matplotlib's Agg backend and returned as PNG bytes.

One style everywhere, and one colour per strategy, fixed by the strategy's position in the suite,
so a strategy looks the same in every figure of a report.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

import gans  # noqa: E402
from benchmarks.execute import FAILED  # noqa: E402
from benchmarks.execute import INCEPTION_SUFFIX as SUFFIX  # noqa: E402
from benchmarks.report_stats import metric_label, ordered_metrics, summary_metrics  # noqa: E402
from gans.metrics_image import INCEPTION  # noqa: E402

STYLE = {"style": "whitegrid", "context": "notebook", "font_scale": 0.9}
DPI = 90  # about 1000 px wide: sharp on a laptop, small enough to embed many
PANEL = 3.6  # inches per subplot
RAW_ALPHA = 0.25  # raw values behind their smoothed line


@dataclass(frozen=True)
class Figure:
    name: str  # file name stem: [a-z0-9-] only
    title: str
    caption: str
    png: bytes


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


def _legend(fig, axes, colours) -> None:
    for ax in axes:
        if ax.get_legend():
            ax.get_legend().remove()
    handles = [plt.Line2D([], [], color=c, lw=2.5, label=s) for s, c in colours.items()]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)


def metric_curves(dataset: str, evals: pd.DataFrame, colours) -> list[Figure]:
    """Each evaluated metric vs generator iterations and vs wall-clock: mean and 95% CI band."""
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
    figures = []
    for x, label in (("gen_iter", "generator iterations"), ("wall_s", "training seconds")):
        fig, axes = _axes(len(metrics))
        for ax, metric in zip(axes, metrics, strict=True):
            sns.lineplot(
                evals[evals["metric"] == metric],
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
            ax.set(title=metric_label(metric), xlabel=label, ylabel=metric)
        _legend(fig, axes, colours)
        figures.append(
            Figure(
                slug(dataset, "metrics-vs", x),
                f"{dataset}: metrics vs {label}",
                "Mean over seeds, band = 95% bootstrap CI (seaborn, seed 0). Wall-clock x is the "
                "mean over seeds at each evaluation point. The last point is the final evaluation, "
                "on more samples than the intermediate ones (FID and KID depend on sample count).",
                _png(fig),
            )
        )
    return figures


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


def critic_curves(dataset: str, curves: pd.DataFrame, colours) -> list[Figure]:
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
    _legend(fig, axes, colours)
    caption = (
        "Mean over seeds per generator iteration: faint line raw, solid line a centred moving "
        "average (window = 1/25 of the run). A strategy without the quantity has no line; "
        "held-out losses of the GAN (cross-entropy) and Wasserstein critics are on different "
        "scales."
    )
    return [
        Figure(slug(dataset, "critic"), f"{dataset}: critic during training", caption, _png(fig))
    ]


def final_spread(dataset: str, runs: pd.DataFrame, colours) -> list[Figure]:
    """Per-seed final metrics as points over a box per strategy."""
    done = runs[runs["status"] == gans.DONE]
    metrics = summary_metrics(done)
    if not metrics:
        return []
    fig, axes = _axes(len(metrics))
    order = [s for s in colours if s in set(done["strategy"])]
    for ax, metric in zip(axes, metrics, strict=True):
        kw = _per_strategy(done, metric, order, colours, ax)
        sns.boxplot(**kw, boxprops={"alpha": 0.35}, showfliers=False)
        sns.stripplot(**kw, size=7, jitter=0.08, edgecolor="black", linewidth=0.6)
        ax.set(title=metric_label(metric), xlabel="")
    caption = "One point per seed (finished runs); the box shows quartiles and median."
    return [
        Figure(
            slug(dataset, "final-per-seed"),
            f"{dataset}: final metrics per seed",
            caption,
            _png(fig),
        )
    ]


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


def time_per_iteration(runs: pd.DataFrame, colours) -> list[Figure]:
    """Training seconds per generator iteration, per strategy, one panel per dataset."""
    timed = runs.assign(s_per_iter=runs.get("train_s", np.nan) / runs.get("gen_iters", np.nan))
    timed = timed[np.isfinite(timed["s_per_iter"].astype(float))]
    if timed.empty:
        return []
    datasets = list(dict.fromkeys(timed["dataset"]))
    fig, axes = _axes(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = timed[timed["dataset"] == dataset]
        order = [s for s in colours if s in set(rows["strategy"])]
        kw = _per_strategy(rows, "s_per_iter", order, colours, ax)
        sns.barplot(**kw, errorbar=None, alpha=0.5)
        sns.stripplot(**kw, size=6, edgecolor="black", linewidth=0.6)
        ax.set(title=dataset, xlabel="", ylabel="seconds / generator iteration")
    caption = (
        "Bar = mean over runs, points = runs. Includes the critic steps of each generator "
        "iteration (n_critic), excludes evaluation."
    )
    return [Figure("time-per-iteration", "Time per generator iteration", caption, _png(fig))]


def _sample_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "samples").glob("*.png"))


def _image_grid(title, rows: list[tuple[str, list[tuple[str, Path]]]], colours) -> bytes:
    ncols = max(len(cells) for _, cells in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(2.4 * ncols, 2.6 * len(rows)), squeeze=False
    )
    for r, (strategy, cells) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(cells):
                label, path = cells[c]
                ax.imshow(plt.imread(path), cmap="gray", interpolation="nearest")
                ax.set_title(f"{strategy}, {label}", fontsize=8, color=colours[strategy])
    fig.suptitle(title)
    return _png(fig)


def sample_grids(dataset: str, runs: pd.DataFrame, suite_dir: Path, colours) -> list[Figure]:
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
    return [
        Figure(
            slug(dataset, "samples-final"),
            f"{dataset}: final samples",
            "The last sample grid of every strategy and seed (diverged runs: their last "
            "evaluation before diverging).",
            _image_grid(f"{dataset}: final samples", finals, colours),
        ),
        Figure(
            slug(dataset, "samples-progression"),
            f"{dataset}: progression",
            "Sample grids at each evaluation point, for each strategy's first seed.",
            _image_grid(f"{dataset}: progression", strips, strip_colours),
        ),
    ]


def toy_views(dataset: str, runs: pd.DataFrame, suite_dir: Path, colours) -> list[Figure]:
    """Generated over real points on the critic's value surface (WGAN-GP paper, Figure 1)."""
    done = runs[runs["status"] == gans.DONE]
    panels = [
        (r.strategy, r.seed, suite_dir / r.run_id / "toy.npz")
        for r in done.itertuples()
        if (suite_dir / r.run_id / "toy.npz").exists()
    ]
    if not panels:
        return []
    seeds = sorted({seed for _, seed, _ in panels})
    strategies = [s for s in colours if s in {p[0] for p in panels}]
    fig, axes = plt.subplots(
        len(strategies),
        len(seeds),
        figsize=(3.4 * len(seeds), 3.2 * len(strategies)),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for strategy, seed, path in panels:
        ax = axes[strategies.index(strategy)][seeds.index(seed)]
        ax.axis("on")
        with np.load(path) as toy:
            ax.contourf(toy["xs"], toy["ys"], toy["critic"], levels=20, cmap="Greys", alpha=0.45)
            ax.contour(
                toy["xs"], toy["ys"], toy["critic"], levels=10, colors="grey", linewidths=0.4
            )
            ax.scatter(*toy["real"].T, s=3, color="black", alpha=0.6, label="real")
            ax.scatter(*toy["fake"].T, s=4, color=colours[strategy], label="generated")
        ax.set(title=f"{strategy}, seed {seed}", xticks=[], yticks=[], aspect="equal")
    caption = (
        "Black: real points; strategy colour: generated points; grey levels and contour "
        "lines: the critic's value surface (darker = higher)."
    )
    return [
        Figure(slug(dataset, "toy"), f"{dataset}: samples and critic surface", caption, _png(fig))
    ]


def dataset_figures(dataset, runs, curves, evals, suite_dir: Path, colours) -> list[Figure]:
    """Every figure of one dataset, in reading order."""
    with (
        sns.axes_style(STYLE["style"]),
        sns.plotting_context(STYLE["context"], font_scale=STYLE["font_scale"]),
    ):
        return [
            *final_spread(dataset, runs, colours),
            *metric_curves(dataset, evals, colours),
            *critic_curves(dataset, curves, colours),
            *sample_grids(dataset, runs, suite_dir, colours),
            *toy_views(dataset, runs, suite_dir, colours),
        ]


def suite_figures(runs, colours) -> list[Figure]:
    with (
        sns.axes_style(STYLE["style"]),
        sns.plotting_context(STYLE["context"], font_scale=STYLE["font_scale"]),
    ):
        return time_per_iteration(runs, colours)
