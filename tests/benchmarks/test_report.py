"""The report, built from a real (tiny) suite run: content, escaping, determinism, and a check in
headless Chromium that the page loads every image without console errors."""

from __future__ import annotations

import base64
import html.parser
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from chromium import assert_renders, needs_chromium
from PIL import Image

from benchmarks import provenance, report
from benchmarks import run as run_module

MARKUP_SUITE = "<i>tiny & co"  # no "/": it is a directory name
MARKUP_MESSAGE = "<script>alert(1)</script> <b>boom</b> & co"
SUITE = """
seeds = [0, 1]
strategies = ["gan", "wgan-gp", "report-test-broken"]

[eval]
intermediate_samples = 100
final_samples = 200
extractors = ["classifier"]

[datasets.25gaussians]
arch = "mlp"
width = 8
batch_size = 64
gen_iters = 10
eval_every = 5

[datasets.mnist-5k]
arch = "dcgan28"
width = 4
batch_size = 16
gen_iters = 4
eval_every = 2
"""
# A strategy that fails when training starts, with markup in its message: failed runs must be
# listed, and their free-text message rendered as text.
BROKEN_PLUGIN = f"""
import gans
from gans.strategies import WGANGP


class BrokenPenalty(gans.GradientPenalty):
    def __call__(self, critic, real, fake, rng):
        raise RuntimeError({MARKUP_MESSAGE!r})


class Broken(WGANGP):
    def make_penalty(self):
        return BrokenPenalty(self.hparams.penalty_weight)


gans.register_strategy("report-test-broken", Broken)
"""


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "tiny.toml").write_text(SUITE)
    (root / "broken.py").write_text(BROKEN_PLUGIN)
    argv = ["--suite", str(root / "tiny.toml"), "--out", str(root / "results"), "--no-report"]
    status = run_module.main(
        [*argv, "--plugin", str(root / "broken.py"), "--device", "cpu", "--workers", "1"]
    )
    assert status == 1  # the broken strategy's runs failed; the others finished
    # Directory names may hold markup on Linux: the suite name in the header must stay text.
    return (root / "results" / "tiny").rename(root / "results" / MARKUP_SUITE)


@pytest.fixture(scope="module")
def report_dir(suite_dir):
    out = suite_dir.parent.parent / "report"
    assert report.main([str(suite_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def runs(suite_dir):
    return pd.read_parquet(suite_dir / "runs.parquet")


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (header first, separator dropped)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not all(set(c) <= {"-"} for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _summary_tables(readme: str) -> dict[str, list[list[str]]]:
    names = re.findall(r"^## (\S+)\n\n### Summary", readme, flags=re.M)
    summaries = [t for t in _markdown_tables(readme) if t[0][:3] == ["strategy", "seeds", "done"]]
    assert len(names) == len(summaries)
    return dict(zip(names, summaries, strict=True))


def test_report_files_exist_and_every_figure_is_beside_the_readme(report_dir):
    readme = (report_dir / "README.md").read_text()
    assert (report_dir / "index.html").stat().st_size > 0
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    expected = {
        "25gaussians-toy.png",
        "mnist-5k-samples-final.png",
        "mnist-5k-samples-progression.png",
        "time-per-iteration.png",
        "mnist-5k-metrics-vs-gen-iter.png",
        "25gaussians-critic.png",
    }
    assert expected <= set(figures)
    for name in figures:
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(report_dir):
    page = (report_dir / "index.html").read_text()
    tags = _tags(page)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    for _, attrs in tags:
        for key in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(key) or ""), attrs[key]
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == len(re.findall(r"!\[", (report_dir / "README.md").read_text()))
    for src in images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_numbers_are_the_means_over_seeds_of_runs_parquet(report_dir, runs):
    summaries = _summary_tables((report_dir / "README.md").read_text())
    assert set(summaries) == {"25gaussians", "mnist-5k"}
    checked = expected = 0
    for dataset, table in summaries.items():
        header = [h.split(" ")[0].replace("\\_", "_") for h in table[0]]
        ours = runs[runs["dataset"] == dataset]
        strategies = table[1:-2]  # then the reference rows: real data, untrained
        assert [row[0] for row in table[-2:]] == ["real data (floor)", "untrained (iteration 0)"]
        assert [row[0] for row in strategies] == list(dict.fromkeys(ours["strategy"]))
        for row in strategies:
            mine = ours[ours["strategy"] == row[0]]
            done = mine[mine["status"] == "done"]
            assert [int(c) for c in row[1:5]] == [
                len(mine),
                len(done),
                (mine["status"] == "diverged").sum(),
                (mine["status"] == "failed").sum(),
            ]
            for column, cell in zip(header, row, strict=True):
                if column not in runs or column in ("strategy",):
                    continue
                if done.empty:  # the broken strategy: no finished run, no number
                    assert cell == "—"
                    continue
                if cell == "—":  # a column with no value for this strategy
                    assert done[column].isna().all(), column
                    continue
                expected += 1
                text = cell.replace("**", "").replace("★", "")
                mean = float(text.split(" ± ")[0])
                assert mean == pytest.approx(done[column].mean(), rel=1e-3, abs=1e-9), column
                checked += 1
    assert checked == expected >= 2 * 3 + 2 * 5  # gan and wgan-gp: 3 toy metrics, >= 5 image


def test_reference_rows_hold_real_data_and_the_untrained_generators(suite_dir, report_dir):
    floors = pd.read_parquet(suite_dir / "references.parquet")
    evals = pd.read_parquet(suite_dir / "evals.parquet")
    table = _summary_tables((report_dir / "README.md").read_text())["25gaussians"]
    header = [h.split(" ")[0] for h in table[0]]
    floor, untrained = (dict(zip(header, row, strict=True)) for row in table[-2:])
    real_w1 = floors[(floors["dataset"] == "25gaussians") & (floors["stage"] == "final")]
    real_w1 = real_w1.loc[real_w1["metric"] == "w1", "value"].item()
    assert float(floor["w1"]) == pytest.approx(real_w1, rel=1e-3)
    initial = evals[(evals["dataset"] == "25gaussians") & (evals["stage"] == "initial")]
    initial_w1 = initial.loc[initial["metric"] == "w1", "value"]
    assert len(initial_w1) == 4  # gan and wgan-gp, two seeds; the broken runs failed first
    assert float(untrained["w1"]) == pytest.approx(initial_w1.mean(), rel=1e-3)
    assert 0 < real_w1 < initial_w1.min()  # real data score better than untrained generators


def test_regenerating_gives_identical_tables_and_numbers(
    suite_dir, report_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert report.main([str(suite_dir)]) == 0  # default --out: reports/<suite name>
    again = tmp_path / "reports" / MARKUP_SUITE / "README.md"

    def stable(readme: Path) -> list[str]:
        return [line for line in readme.read_text().splitlines() if "report generated" not in line]

    assert stable(again) == stable(report_dir / "README.md")


def test_a_new_report_removes_the_figures_of_the_earlier_one_and_nothing_else(
    suite_dir, report_dir, tmp_path
):
    out = tmp_path / "report"
    out.mkdir()
    kept = {"notes.txt": b"mine", "logo.png": b"not a figure of a report"}
    for name, content in kept.items():
        (out / name).write_bytes(content)
    # An earlier report (of a version before the report marker) of a suite that had a dataset
    # this one lacks.
    (out / "README.md").write_text(
        "# GAN loss benchmark: old\n"
        "![old: toy](swissroll-toy.png)\n![spread](mnist-5k-final-per-seed.png)\n"
        "Sample grids over training: [gan, seed 7](mnist-5k-gan-seed-7-progress.gif)\n"
    )
    (out / "swissroll-toy.png").write_bytes(b"stale")
    (out / "mnist-5k-gan-seed-7-progress.gif").write_bytes(b"stale")

    assert report.main([str(suite_dir), "--out", str(out)]) == 0

    assert not (out / "swissroll-toy.png").exists()
    assert not (out / "mnist-5k-gan-seed-7-progress.gif").exists()
    assert {name: (out / name).read_bytes() for name in kept} == kept
    figures = {p.name for p in out.glob("*.png")} - set(kept)
    assert figures == {p.name for p in report_dir.glob("*.png")}


def test_a_report_never_writes_over_a_directory_it_did_not_write(suite_dir, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    mine = {
        "README.md": b"# My project\n![](architecture.png)\n![](demo.gif)\n",
        "architecture.png": b"a user's figure",
        "demo.gif": b"a user's animation",
    }
    for name, content in mine.items():
        (docs / name).write_bytes(content)
    assert report.main([str(suite_dir), "--out", str(docs)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --out {docs} holds files that no report of this suite wrote (README.md, "
        "architecture.png, demo.gif); give a new or empty directory, or one that a report wrote\n"
    )
    assert {p.name: p.read_bytes() for p in docs.iterdir()} == mine
    # Into its own directory, a report replaces the files its marker names and nothing else.
    out = tmp_path / "report"
    assert report.main([str(suite_dir), "--out", str(out)]) == 0
    written = json.loads((out / report.REPORT_MARKER).read_text())["files"]
    assert set(written) == {p.name for p in out.iterdir()} - {report.REPORT_MARKER}
    (out / "notes.txt").write_text("mine")
    stale = out / written[0]
    stale.write_bytes(b"stale")
    marker = {"files": [*written, "gone-figure.png"]}
    (out / report.REPORT_MARKER).write_text(json.dumps(marker))
    (out / "gone-figure.png").write_bytes(b"a figure this report no longer draws")
    assert report.main([str(suite_dir), "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and not (out / "gone-figure.png").exists()
    assert stale.read_bytes() != b"stale"


def test_each_image_run_has_a_linked_gif_with_one_frame_per_evaluation_point(
    suite_dir, report_dir, runs
):
    readme = (report_dir / "README.md").read_text()
    evals = pd.read_parquet(suite_dir / "evals.parquet")
    image_runs = runs[(runs["dataset"] == "mnist-5k") & (runs["status"] == "done")]
    assert len(image_runs) == 4  # gan and wgan-gp, two seeds each
    for run in image_runs.itertuples():
        name = f"mnist-5k-{run.strategy}-seed-{run.seed}-progress.gif"
        assert f"[{run.strategy}, seed {run.seed}]({name})" in readme
        points = evals[evals["run_id"] == run.run_id]["gen_iter"].nunique()
        assert points == 3  # iterations 0, 2 and 4
        with Image.open(report_dir / name) as gif:
            assert (gif.format, gif.n_frames, gif.info["loop"]) == ("GIF", points, 0)


def test_several_suites_make_one_report_keyed_by_suite_and_strategy(suite_dir, tmp_path):
    # The same results twice under two suite names: equal configs, hence equal run ids.
    first, second = tmp_path / "recipe-a", tmp_path / "recipe-b"
    shutil.copytree(suite_dir, first)
    shutil.copytree(suite_dir, second)
    out = tmp_path / "compared"

    assert report.main([str(first), str(second), "--out", str(out)]) == 0

    readme = (out / "README.md").read_text()
    assert "- **suites**: recipe-a, recipe-b" in readme
    summaries = _summary_tables(readme)
    for dataset in ("25gaussians", "mnist-5k"):
        strategies = [row[0] for row in summaries[dataset][1:] if "(" in row[0]]
        assert {"gan (recipe-a)", "gan (recipe-b)", "wgan-gp (recipe-a)"} <= set(strategies)
    # Each suite's runs keep their own sample grids.
    assert (out / "mnist-5k-gan-recipe-a-seed-0-progress.gif").exists()
    assert (out / "mnist-5k-gan-recipe-b-seed-0-progress.gif").exists()
    assert report.main([str(first), str(first), "--out", str(out)]) == 2


def test_header_says_what_the_suite_ran_with(suite_dir, report_dir):
    recorded = json.loads((suite_dir / "environment.json").read_text())
    assert set(recorded) == {"schedule", "python", "libraries"}
    assert recorded["schedule"].endswith("runs on cpu")
    readme = (report_dir / "README.md").read_text()
    assert f"- **schedule (last invocation)**: {recorded['schedule']}" in readme
    assert f"torch {torch.__version__.split('+')[0]}," in recorded["libraries"]
    # Every finished run was trained here, by this checkout: one provenance line, no warning.
    trained_by = [line for line in readme.splitlines() if line.startswith("- **trained by**")]
    assert len(trained_by) == 1 and trained_by[0].endswith(": 8 runs"), trained_by
    assert f"CPU {provenance.cpu_model()} (" in trained_by[0]
    # Warnings only where this checkout's state calls for them (a developer's uncommitted code).
    runs = pd.read_parquet(suite_dir / "runs.parquet")
    _, warnings = provenance.provenance_summary(runs, provenance.code_version())
    assert readme.count("> **Provenance:**") == len(warnings)
    assert all(f"> **Provenance:** {warning}" in readme for warning in warnings)


def test_a_directory_without_results_is_refused(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "no runs.parquet" in capsys.readouterr().err


def test_markup_from_results_renders_as_text(report_dir):
    page = (report_dir / "index.html").read_text()
    readme = (report_dir / "README.md").read_text()
    for text in (MARKUP_SUITE, MARKUP_MESSAGE):
        assert text not in page and text not in readme
    assert "<i>" not in page and "<b>" not in page and "<script" not in page
    assert "&lt;i&gt;tiny &amp; co" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;boom&lt;/b&gt; &amp; co" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in readme


def test_failed_runs_are_listed_with_step_and_message(report_dir, runs):
    tables = _markdown_tables((report_dir / "README.md").read_text())
    failures = next(t for t in tables if t[0][:3] == ["dataset", "strategy", "seed"])
    failed = runs[runs["status"] != "done"]
    assert len(failures) - 1 == len(failed) == 4
    assert {row[3] for row in failures[1:]} == set(failed["run_id"])
    assert all("RuntimeError" in row[6] for row in failures[1:])


def test_two_vs_two_seeds_say_too_few_to_conclude_once_per_dataset(report_dir):
    readme = (report_dir / "README.md").read_text()
    pairs = [row for t in _markdown_tables(readme) if t[0][0] == "metric" for row in t[1:]]
    assert len(pairs) >= 3 + 5  # one pair (gan, wgan-gp) per metric of each dataset
    for row in pairs:
        assert row[9] == "2 vs 2"
        assert row[10] == "too few seeds"
    assert readme.count("Too few seeds to conclude for") == 2


def test_the_report_leads_with_the_answer(report_dir):
    readme = (report_dir / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert sections[0] == "Answer" and sections[-1] == "Methods"
    answer = readme.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert "### 25gaussians" in answer and "### mnist-5k" in answer
    assert "Final W1 (lower is better" in answer and "Final FID (lower is better" in answer
    assert "Cost per generator iteration" in answer


@needs_chromium
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    assert_renders(report_dir / "index.html", tmp_path, min_images=8)
