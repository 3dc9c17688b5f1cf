"""The report's figures, drawn from small synthetic tables: reference lines where the values are,
diverged seeds apart from the boxes, toy panels on one square, sample grids large enough to read."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.markers import MarkerStyle
from PIL import Image

import gans
from benchmarks import report_images as images
from benchmarks import report_plots as plots
from benchmarks.report_figures import palette
from benchmarks.report_stats import FINAL, LAST_GOOD, REAL_DATA, UNTRAINED
from gans.metrics_image import CLASSIFIER

COLOURS = palette(["gan", "wgan-gp"])
THRESHOLD = {"metric": "fid", "value": 63.1, "label": "quality threshold"}
REFS = pd.DataFrame(
    [
        (REAL_DATA, "intermediate", "fid", 9.95),
        (UNTRAINED, "intermediate", "fid", 400.0),
        (REAL_DATA, "final", "fid", 4.5),
        (REAL_DATA, "intermediate", "kid", 0.5),
    ],
    columns=["reference", "stage", "metric", "value"],
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _evals() -> pd.DataFrame:
    rows = []
    for strategy, scale in (("gan", 1.0), ("wgan-gp", 0.8)):
        for seed in (0, 1):
            for step, (fid, kid) in enumerate(((300.0, 30.0), (150.0, 12.0), (60.0, 5.0))):
                for metric, value in (("fid", fid), ("kid", kid)):
                    rows.append(
                        {
                            "run_id": f"{strategy}-{seed}",
                            "strategy": strategy,
                            "seed": seed,
                            "gen_iter": 10 * step,
                            "elapsed_s": 2.0 * step + seed,
                            "stage": "final" if step == 2 else "intermediate",
                            "metric": metric,
                            "value": scale * value + seed,
                            "feature_extractor": CLASSIFIER,
                        }
                    )
    return pd.DataFrame(rows)


def _horizontal(ax) -> dict[float, tuple[str, str]]:
    """y -> (line style, colour) of every horizontal line spanning the axes."""
    return {
        line.get_ydata()[0]: (line.get_linestyle(), line.get_color())
        for line in ax.lines
        if list(line.get_xdata()) == [0, 1] and len(set(line.get_ydata())) == 1
    }


def _panel(drawing: plots.Drawing, metric: str):
    return next(ax for ax in drawing.fig.axes if ax.get_title().split(" ")[0] == metric)


def test_metric_curves_draw_the_intermediate_references_and_the_threshold_on_seconds():
    by_iter, by_seconds = plots.metric_curves("mnist", _evals(), COLOURS, REFS, THRESHOLD)

    for drawing in (by_iter, by_seconds):
        fid = _panel(drawing, "fid")
        lines = _horizontal(fid)
        assert lines[9.95] == ("--", "black")
        assert lines[400.0] == ("-.", "grey")
        assert 4.5 not in lines  # the final-stage reference belongs to the per-seed figure
        low, high = fid.get_ylim()
        assert low < 9.95 and high > 400.0
        # 9.95 to 400 spans 40x: a log axis, said in the caption; KID (not ratio-scale) is linear
        assert fid.get_yscale() == "log"
        assert _panel(drawing, "kid").get_yscale() == "linear"
        assert "Log y-axis for fid" in drawing.caption
        assert _horizontal(_panel(drawing, "kid"))[0.5] == ("--", "black")
        strategies, lines = ([t.get_text() for t in g.get_texts()] for g in drawing.fig.legends)
        assert strategies == ["gan", "wgan-gp"]
        assert lines[:2] == ["real data (floor)", "untrained (iteration 0)"]
    assert 63.1 not in _horizontal(_panel(by_iter, "fid"))
    assert _horizontal(_panel(by_seconds, "fid"))[63.1] == (":", "dimgrey")
    assert "Dotted: quality threshold" in by_seconds.caption
    assert "quality threshold" not in by_iter.caption


def test_metric_curves_without_references_draw_no_lines():
    (drawing, _) = plots.metric_curves("mnist", _evals(), COLOURS, pd.DataFrame(), None)

    assert _horizontal(_panel(drawing, "fid")) == {}
    assert "Horizontal lines" not in drawing.caption


def _per_seed() -> pd.DataFrame:
    rows = [
        ("gan-0", "gan", 0, gans.DONE, 1.0, FINAL),
        ("gan-1", "gan", 1, gans.DONE, 2.0, FINAL),
        ("gan-2", "gan", 2, gans.DONE, 3.0, FINAL),
        ("gan-3", "gan", 3, gans.DIVERGED, 100.0, LAST_GOOD),
        ("gp-0", "wgan-gp", 0, gans.DONE, 5.0, FINAL),
        ("gp-1", "wgan-gp", 1, gans.DONE, 6.0, FINAL),
        ("gp-2", "wgan-gp", 2, gans.DIVERGED, np.nan, LAST_GOOD),
    ]
    frame = pd.DataFrame(rows, columns=["run_id", "strategy", "seed", "status", "value", "counted"])
    return frame.assign(metric="fid")


def test_final_spread_draws_a_diverged_seed_as_a_hollow_x_outside_the_box():
    (drawing,) = plots.final_spread("mnist", _per_seed(), COLOURS, REFS)
    (ax,) = drawing.fig.axes

    points = {
        tuple(xy): collection
        for collection in ax.collections
        for xy in np.round(collection.get_offsets(), 6)
    }
    diverged = next(c for xy, c in points.items() if xy[1] == 100.0)
    assert len(diverged.get_offsets()) == 1
    assert len(diverged.get_facecolors()) == 0  # hollow
    np.testing.assert_allclose(diverged.get_edgecolors()[0][:3], COLOURS["gan"], atol=1e-6)
    x_path = MarkerStyle("X").get_path().transformed(MarkerStyle("X").get_transform())
    np.testing.assert_allclose(diverged.get_paths()[0].vertices, x_path.vertices)
    finished = [xy for xy, c in points.items() if c is not diverged]
    assert sorted(y for _, y in finished) == [1.0, 2.0, 3.0, 5.0, 6.0]
    # gan's seeds spread over its slot (x = 0), ordered by seed, the diverged one last
    assert sorted(x for x, y in points if y <= 3.0 or y == 100.0) == pytest.approx(
        [-0.15, -0.05, 0.05, 0.15]
    )

    lines = _horizontal(ax)
    assert lines == {4.5: ("--", "black")}  # the final reference only
    box_ys = [y for line in ax.lines if line.get_linestyle() == "-" for y in line.get_ydata()]
    assert min(box_ys) == 1.0 and max(box_ys) == 6.0  # 100 is not in gan's box or whiskers
    medians = {line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1}
    assert {2.0, 5.5} <= medians
    assert "Hollow X" in drawing.caption
    assert "1 diverged run(s) had no evaluation before diverging" in drawing.caption
    markers, lines = ([t.get_text() for t in g.get_texts()] for g in drawing.fig.legends)
    assert markers == ["finished seed", "diverged seed: last evaluation before diverging"]
    assert lines == ["real data (floor)"]


def _toy(path, lo: float, hi: float, fake: np.ndarray) -> None:
    xs = ys = np.linspace(lo, hi, 5)
    critic = np.add.outer(ys, xs)
    real = np.array([[lo + 0.5, lo + 0.5], [hi - 0.5, hi - 0.5]])
    path.parent.mkdir(parents=True)
    np.savez_compressed(path, xs=xs, ys=ys, critic=critic, real=real, fake=fake)


def _runs(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "strategy", "seed", "status"])


def test_toy_panels_share_the_square_and_count_the_points_outside(tmp_path):
    inside = np.array([[0.0, 0.0], [1.0, -1.0]])
    _toy(tmp_path / "a" / "toy.npz", -2.0, 2.0, np.vstack([inside, [[5.0, 0.0], [0.0, -9.0]]]))
    _toy(tmp_path / "b" / "toy.npz", -2.5, 2.0, inside)
    runs = _runs([("a", "gan", 0, gans.DONE), ("b", "wgan-gp", 0, gans.DONE)])

    run_dirs = {rid: tmp_path / rid for rid in runs["run_id"]}
    (drawing,) = images.toy_views("25gaussians", runs, run_dirs, COLOURS)

    panels = [ax for ax in drawing.fig.axes if ax.axison]
    assert len(panels) == 2
    for ax in panels:  # the union of the two squares
        assert ax.get_xlim() == pytest.approx((-2.5, 2.0))
        assert ax.get_ylim() == pytest.approx((-2.5, 2.0))
        generated = ax.collections[-1].get_offsets()
        np.testing.assert_allclose(generated, inside)
    assert [ax.get_title() for ax in panels] == [
        "gan, seed 0\n2 points outside",
        "wgan-gp, seed 0",
    ]
    assert "scaled per panel" in drawing.caption


def test_sample_grids_wrap_seeds_onto_rows_of_large_cells(tmp_path):
    rows = []
    for seed in range(4):
        samples = tmp_path / f"gan-{seed}" / "samples"
        samples.mkdir(parents=True)
        for step in (0, 10):
            pixels = np.full((242, 242, 3), 40 * seed + step, dtype=np.uint8)
            Image.fromarray(pixels).save(samples / f"{step:07d}.png")
        rows.append((f"gan-{seed}", "gan", seed, gans.DONE))

    runs = _runs(rows)
    run_dirs = {rid: tmp_path / rid for rid in runs["run_id"]}
    finals, progression = images.sample_grids("mnist", runs, run_dirs, COLOURS)

    shown = [ax for ax in finals.fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == [f"gan, seed {s}" for s in range(4)]
    finals.fig.canvas.draw()
    for ax in shown:
        box = ax.get_window_extent()
        assert min(box.width, box.height) / finals.fig.dpi >= 3.5
    rows_of_axes = sorted({round(ax.get_position().y0, 3) for ax in shown})
    assert len(rows_of_axes) == 2  # 3 seeds on the first row, the fourth below
    assert [ax.get_title() for ax in progression.fig.axes if ax.images] == [
        "gan seed 0, iter 0",
        "gan seed 0, iter 10",
    ]


def test_dataset_figures_give_the_same_bytes_from_the_same_tables(tmp_path):
    # Per-seed points only (no evaluations to draw curves of): the figure whose point positions
    # once came from seaborn's jitter, drawn from numpy's global generator.
    runs = _runs([("gan-0", "gan", 0, gans.DONE), ("gp-0", "wgan-gp", 0, gans.DONE)])
    run_dirs = {rid: tmp_path / rid for rid in runs["run_id"]}
    args = ("mnist", runs, pd.DataFrame(), pd.DataFrame(), run_dirs, COLOURS, REFS, _per_seed())

    first = plots.dataset_figures(*args, THRESHOLD)
    np.random.seed(1)
    again = plots.dataset_figures(*args, THRESHOLD)

    assert [f.name for f in first] == ["mnist-final-per-seed"]
    assert first[0].png == again[0].png
    assert first[0].png.startswith(b"\x89PNG")
