"""Write a suite's report from its results tables: one self-contained HTML file and a README.md.

    python -m benchmarks.report results/quick            # -> reports/quick/index.html, README.md

The HTML embeds every figure (base64 data URIs) and needs nothing else to open, offline. The
Markdown holds the same tables, with the figures as PNG files beside it. Numbers are a pure,
seeded function of the tables, so regenerating a report gives the same tables and numbers.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import re
import sys
from pathlib import Path

import jinja2
import markupsafe
import pandas as pd

from benchmarks import report_plots as plots
from benchmarks import report_stats as rs
from benchmarks.provenance import ENVIRONMENT_FILE, environment

TEMPLATES = Path(__file__).parent / "templates"
METHOD_NOTES = (
    f"Summary cells: mean ± standard deviation over seeds, then a {rs.CONFIDENCE:.0%} "
    f"percentile-bootstrap confidence interval of the mean (scipy.stats.bootstrap, "
    f"{rs.BOOTSTRAP_RESAMPLES} resamples, seed {rs.BOOTSTRAP_SEED}); with fewer than "
    f"{rs.MIN_SEEDS_FOR_CI} seeds the interval is not computed ([CI n/a]), since a bootstrap "
    f"of two values can only return those values and their mean. ★ marks the best mean per "
    f"column (↓ lower is better, ↑ higher is better). Only finished runs count; diverged and "
    f"failed ones are counted and listed. s / gen iter: training seconds per generator "
    f"iteration (critic steps included), mean over runs; total s: training plus evaluation "
    f"seconds of all the strategy's runs.",
    f"Comparisons: two-sided Mann-Whitney U test per pair of strategies (scipy.stats."
    f"mannwhitneyu), effect size as rank-biserial correlation (+1: every seed of the better "
    f"strategy beats every seed of the other), difference of means with a {rs.CONFIDENCE:.0%} "
    f"bootstrap CI (≥ {rs.MIN_SEEDS_FOR_CI} seeds each). A pair is called too few seeds to "
    f"conclude when even a perfect separation could not reach p < {rs.ALPHA} (2 vs 2 seeds: "
    f"smallest p = {rs.smallest_p(2, 2):.2f}; 3 vs 3: {rs.smallest_p(3, 3):.2f}); p-values are "
    f"not corrected for the number of comparisons.",
)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", type=Path, help="a suite's results directory, e.g. results/quick")
    p.add_argument("--out", type=Path, help="report directory (default: reports/<suite>)")
    return p.parse_args(argv)


def load_tables(suite_dir: Path) -> dict[str, pd.DataFrame]:
    tables = {}
    for name in ("runs", "curves", "evals"):
        path = suite_dir / f"{name}.parquet"
        tables[name] = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    return tables


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{seconds:.1f} s ({hours}:{minutes:02d}:{secs:02d})"


def _environment(suite_dir: Path) -> dict[str, str]:
    """What the suite ran with (environment.json); this process's environment if not recorded."""
    recorded = suite_dir / ENVIRONMENT_FILE
    if recorded.exists():
        return json.loads(recorded.read_text())
    return {
        key: f"{value} (of the report, not recorded by the run)"
        for key, value in environment().items()
    }


def header(suite_dir: Path, runs: pd.DataFrame, evals: pd.DataFrame) -> list[tuple[str, str]]:
    """Where the results and the report come from, as (label, value) pairs."""
    written = dt.datetime.fromtimestamp((suite_dir / "runs.parquet").stat().st_mtime, dt.UTC)
    total = sum(pd.to_numeric(runs.get(c), errors="coerce").sum() for c in ("train_s", "eval_s"))
    libraries = sorted(set(evals.get("library", pd.Series(dtype=str)).dropna()))
    counts = runs["status"].value_counts()
    return [
        ("suite", suite_dir.name),
        ("results written", written.strftime("%Y-%m-%d %H:%M UTC")),
        ("report generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        *_environment(suite_dir).items(),
        ("metric libraries (from the results)", ", ".join(libraries) or "—"),
        ("runs", ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))),
        ("total time (train + eval, all runs)", _duration(total)),
    ]


def build_context(suite_dir: Path, tables: dict[str, pd.DataFrame]) -> dict:
    runs, curves, evals = tables["runs"], tables["curves"], tables["evals"]
    colours = plots.palette(rs.strategy_order(runs))
    datasets = []
    for dataset in dict.fromkeys(runs["dataset"]):
        ds_runs = runs[runs["dataset"] == dataset]
        found = rs.comparisons(ds_runs)

        def of(frame, dataset=dataset):
            return frame[frame["dataset"] == dataset] if "dataset" in frame else frame.iloc[:0]

        datasets.append(
            {
                "name": dataset,
                "summary": rs.summary_table(ds_runs),
                "verdicts": rs.verdicts(ds_runs, found),
                "comparisons": rs.comparison_table(found),
                "figures": plots.dataset_figures(
                    dataset, ds_runs, of(curves), of(evals), suite_dir, colours
                ),
            }
        )
    return {
        "suite": suite_dir.name,
        "header": header(suite_dir, runs, evals),
        "notes": METHOD_NOTES,
        "setup": rs.setup_table(suite_dir, runs, evals),
        "datasets": datasets,
        "suite_figures": plots.suite_figures(runs, colours),
        "failures": rs.failures_table(runs),
    }


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def markdown_escape(value) -> str:
    """Text that Markdown (and the HTML GitHub allows inside it) shows literally.

    Values marked safe (the template's own macros, called with ``|safe``) pass unchanged.
    """
    if isinstance(value, markupsafe.Markup):
        return value
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.FileSystemLoader(TEMPLATES)
    common = {"loader": loader, "undefined": jinja2.StrictUndefined, "keep_trailing_newline": True}
    html = jinja2.Environment(
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=True),
        **common,
    )
    # Markdown has no autoescape of its own: every {{ value }} passes through markdown_escape.
    markdown = jinja2.Environment(autoescape=False, finalize=markdown_escape, **common)
    return html, markdown


def _figures(context) -> list[plots.Figure]:
    return context["suite_figures"] + [f for d in context["datasets"] for f in d["figures"]]


def write_report(suite_dir: Path, out: Path) -> None:
    context = build_context(suite_dir, load_tables(suite_dir))
    out.mkdir(parents=True, exist_ok=True)
    uris = {
        f.name: "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
        for f in _figures(context)
    }
    html_env, md_env = environments()
    for figure in _figures(context):
        (out / f"{figure.name}.png").write_bytes(figure.png)
    (out / "index.html").write_text(
        html_env.get_template("report.html.j2").render(**context, uris=uris), encoding="utf-8"
    )
    (out / "README.md").write_text(
        md_env.get_template("report.md.j2").render(**context), encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite_dir = args.results.resolve()
    if not (suite_dir / "runs.parquet").exists():
        print(f"error: {suite_dir} has no runs.parquet; run benchmarks.run first", file=sys.stderr)
        return 2
    out = args.out or Path("reports") / suite_dir.resolve().name
    write_report(suite_dir, out)
    print(f"report: {out / 'index.html'} and {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
