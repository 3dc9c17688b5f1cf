"""The report's image figures: sample grids per strategy and seed, their progress as animated
GIFs, and the toy views (generated over real points on the critic's value surface)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

import gans
from benchmarks.report_figures import Drawing, slug
from benchmarks.store import FAILED

# An 8x8 MNIST grid is 242 px: at 3.6 in (324 px at DPI) every pixel is drawn, none dropped.
SAMPLE_CELL = 3.6
SAMPLE_COLUMNS = 3  # grids per figure row (about 1000 px); further seeds or iterations wrap


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


def sample_grids(
    dataset: str, runs: pd.DataFrame, run_dirs: dict[str, Path], colours
) -> list[Drawing]:
    """Final samples per strategy and seed, and each strategy's progression over evaluations."""
    done = runs[runs["status"] != FAILED]
    finals, strips, strip_colours = [], [], {}
    for strategy in [s for s in colours if s in set(done["strategy"])]:
        rows = done[done["strategy"] == strategy].sort_values("seed")
        cells = [(f"seed {r.seed}", _sample_files(run_dirs[r.run_id])) for r in rows.itertuples()]
        cells = [(label, files) for label, files in cells if files]
        if not cells:
            continue
        finals.append((strategy, [(label, files[-1]) for label, files in cells]))
        label, files = cells[0]
        strips.append((f"{strategy} {label}", [(f"iter {int(f.stem)}", f) for f in files]))
        strip_colours[f"{strategy} {label}"] = colours[strategy]
    if not finals:
        return []
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


@dataclass(frozen=True)
class Animation:
    """A run's sample grids over training as an animated GIF, written next to the report."""

    name: str  # file name stem: [a-z0-9-] only
    label: str  # e.g. "wgan-gp, seed 0"
    gif: bytes


FRAME_MS = 400  # how long each evaluation point is shown
LABEL_PX = 14  # the strip above each grid that names its generator iteration


def progress_gif(files: list[Path]) -> bytes:
    """The sample grids ``files`` (named by generator iteration) as a looping GIF, one frame per
    grid, each labelled with its iteration (which also keeps equal grids as separate frames)."""
    frames = []
    for path in files:
        with Image.open(path) as grid:
            frame = Image.new("RGB", (grid.width, grid.height + LABEL_PX), "white")
            frame.paste(grid.convert("RGB"), (0, LABEL_PX))
        ImageDraw.Draw(frame).text((2, 1), f"iter {int(path.stem)}", fill="black")
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0
    )
    return buffer.getvalue()


def progress_animations(
    dataset: str, runs: pd.DataFrame, run_dirs: dict[str, Path], colours
) -> list[Animation]:
    """One GIF per strategy and seed with at least two sample grids (image datasets only)."""
    done = runs[runs["status"] != FAILED]
    animations = []
    for strategy in [s for s in colours if s in set(done["strategy"])]:
        for r in done[done["strategy"] == strategy].sort_values("seed").itertuples():
            files = _sample_files(run_dirs[r.run_id])
            if len(files) >= 2:
                animations.append(
                    Animation(
                        slug(dataset, strategy, f"seed-{r.seed}", "progress"),
                        f"{strategy}, seed {r.seed}",
                        progress_gif(files),
                    )
                )
    return animations


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as toy:
        return {key: toy[key] for key in toy.files}


def toy_views(
    dataset: str, runs: pd.DataFrame, run_dirs: dict[str, Path], colours
) -> list[Drawing]:
    """Generated over real points on the critic's value surface (WGAN-GP paper, Figure 1)."""
    done = runs[runs["status"] == gans.DONE].sort_values(["strategy", "seed", "run_id"])
    toys = {
        (r.strategy, r.seed): _load(run_dirs[r.run_id] / "toy.npz")
        for r in done.itertuples()
        if (run_dirs[r.run_id] / "toy.npz").exists()
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
