"""Write a suite's report from its results tables: one self-contained HTML file and a README.md.

    python -m benchmarks.report results/quick            # -> reports/quick/index.html, README.md
    python -m benchmarks.report results/a results/b      # -> reports/a+b/: the suites compared

Several suites' results make one report in which a run is keyed by its suite and strategy
("wgan-gp (a)"): recipes compared on equal terms, where they share a dataset and an evaluation
plan. Animated GIFs of each run's sample grids over training are written beside the pages.

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
import math
import re
import sys
from pathlib import Path

import jinja2
import markupsafe
import pandas as pd

import gans
from benchmarks import report_answer as answers
from benchmarks import report_images as images
from benchmarks import report_plots as plots
from benchmarks import report_stats as rs
from benchmarks import report_sweep as sweeps
from benchmarks.bootstrap import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, MIN_SEEDS_FOR_CI
from benchmarks.provenance import (
    code_of,
    code_version,
    environment_lines,
    provenance_summary,
    read_environment,
)
from benchmarks.report_figures import Figure, palette
from benchmarks.store import CONFIG_COLUMNS, FAILED, INCEPTION_SUFFIX, INITIAL, with_columns
from gans import metrics as m
from gans import write_atomically
from gans.metrics_image import INCEPTION

TEMPLATES = Path(__file__).parent / "templates"
RUN_COLUMNS = (*CONFIG_COLUMNS, "status")  # what every row of runs.parquet has, failed runs too
# The example: the quick suite at one commit and torch version on an Intel Xeon and on an AMD
# EPYC machine (docs/performance-log.md, "Reproducibility across CPU kinds").
REPRODUCIBILITY = (
    "Reproducibility: a run's numbers are a function of its configuration (its run id, which for "
    "a plugin includes a hash of its source), the code that trained it (the commit and any "
    "uncommitted changes: the trained-by lines above), the torch version, and where it ran: the "
    "CPU kind and the instruction set torch's kernels used on it, the torch thread count, or the "
    "GPU, and how many runs were stacked (the stack column). With all of these the same, a rerun "
    "on a CPU reproduces every number bit for bit (on a GPU only with --deterministic and "
    "without --compile). On another CPU kind, another thread count or a GPU, sums are rounded in "
    "another order and training carries the difference along, so numbers agree only "
    "statistically, within the spread over seeds: the quick suite's final W1 on 8gaussians, mean "
    "of 5 seeds, was 0.1828 on an Intel Xeon and 0.1822 on an AMD EPYC for wgan-gp, 0.9471 and "
    "0.9319 for gan. Compare such results by their intervals and tests, not digit by digit "
    "(precision fp64 computes the same run in float64 and shows how far float32's rounding moved "
    "it). Image metrics compare only between rows that name the same feature extractor: "
    "mnist-5k's classifier ships with the package and has one name on every machine; the "
    "classifier of another dataset is trained on the machine and named by a hash of its "
    "weights, which may differ between CPU kinds; Inception features (inception-v3-compat) are "
    "the ones that compare with published FIDs."
)
METHODS = (
    f"Summary cells: mean ± standard deviation over the finished seeds, then a {CONFIDENCE:.0%} "
    f"percentile-bootstrap confidence interval of the mean (scipy.stats.bootstrap, "
    f"{BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}); with fewer than {MIN_SEEDS_FOR_CI} "
    f"seeds no interval is computed ([CI n/a]): a bootstrap of two values can only return them and "
    f"their mean. A run has diverged when a loss or the penalty becomes non-finite or larger in "
    f"magnitude than its divergence limit (1e6 unless the suite sets divergence_limit; the runs "
    f"table records it); it stops there. Every seed counts: a diverged seed is named beside every "
    f"mean it is not in, ranks below every finished seed in the rankings and the rank test, and "
    f"shows its last evaluation before diverging in the per-seed figure. Failed runs (errors) are "
    f"listed at the end. ★ marks the best strategy per column by that ranking (↓ lower is better, ↑"
    f" higher is better). s / gen iter: training seconds per generator iteration (critic steps "
    f"included), mean over runs; total s: training plus evaluation seconds of all the strategy's "
    f"runs.",
    "Reference rows and lines: real data (floor) is the metric of real data against the same "
    "held-out split at the same sample counts (train digits against the test digits; for toy "
    "data, independent samples of the true distribution), the best a generator can expect to "
    "score; untrained (iteration 0) is the mean of every run's generator evaluated before "
    "training. The quality threshold of the time-to-quality line lies halfway between the two "
    "(on a log scale for FID and W1).",
    f"Pairwise tests: the deciding test is Welch's t-test (scipy.stats.ttest_ind, equal_var=False) "
    f"on the finished seeds, on the log of FID and W1 (ratio-scale quantities whose spread grows "
    f"with the value; the ratio column is the ratio of geometric means, worse / better) and on "
    f"the metric itself otherwise; it assumes roughly normal values per strategy and has power "
    f"at small n. When a strategy of the pair has diverged seeds, or Welch's test is undefined "
    f"(no spread), the two-sided Mann-Whitney U test over every seed, diverged seeds ranked "
    f"worst, decides instead; its p cannot go below {rs.smallest_p(3, 3):.2f} with 3 vs 3 "
    f"seeds or {rs.smallest_p(5, 5):.3f} with 5 vs 5. The rank-biserial correlation (+1: every "
    f"seed of the better strategy beats every seed of the other) is the effect size over every "
    f"seed. Significant: yes when p < {rs.ALPHA} and the {CONFIDENCE:.0%} bootstrap interval "
    f"of the difference of means excludes 0; no when p ≥ {rs.ALPHA} and it includes 0; "
    f"borderline when the two disagree. p-values are not corrected for the number of "
    f"comparisons: read them one metric at a time, the primary metric first.",
    REPRODUCIBILITY,
)
# What each metric can and cannot tell, for the methods section.
METRIC_NOTES = {
    m.FID: "FID: Fréchet distance between Gaussians fitted to real and generated features. "
    "Sensitive to quality and diversity together; biased upwards at small sample counts, so "
    "compare it only at equal counts (the floor row is real data at the same counts). With the "
    "classifier extractor its features are a small digit classifier's, not Inception's: the "
    "numbers are not comparable with FIDs in papers.",
    m.KID: "KID: unbiased squared MMD of the same features (×1000 here); near 0, and possibly "
    "negative, for sets from the same distribution. Less biased than FID at small counts.",
    m.PRECISION: "precision / recall: share of generated samples inside the k-NN balls of the "
    "real features (fidelity), and of real samples inside those of the generated ones "
    "(diversity). Outliers inflate the balls, so precision alone can call unrealistic samples "
    "realistic.",
    m.DENSITY: "density / coverage (Naeem et al. 2020): how many real k-NN balls contain each "
    "generated sample (fidelity, about 1 for real data, may exceed 1), and the share of real "
    "samples whose ball holds a generated one (diversity). Robust to the outliers that mislead "
    "precision and recall.",
    m.IS: "IS: exp of the mean KL between the classifier's prediction per sample and over all "
    "samples. Rewards confident, varied class predictions; blind to within-class quality and to "
    "how the real data look.",
    m.W1: "W1 (toy data): exact Wasserstein-1 distance between generated and held-out points "
    "(optimal transport, POT). The toy datasets' primary metric: above 0 even for real data at "
    "a finite sample count (the floor row).",
    m.MODES_COVERED: "modes covered / high-quality fraction (Gaussian mixtures): modes holding at "
    "least a quarter of their fair share of samples within 3 standard deviations, and the share "
    "of samples that close to some mode. They tell mode collapse apart from blur, not how well "
    "each mode's shape is matched.",
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="a suite's results directory, e.g. results/quick; several: one report comparing them",
    )
    p.add_argument(
        "--out", type=Path, help="report directory (default: reports/<suite>, reports/<a>+<b>)"
    )
    return p.parse_args(argv)


class ReportError(Exception):
    """Results the report cannot be written from: one line, exit status 2."""


def load_tables(suite_dir: Path) -> dict[str, pd.DataFrame]:
    """The suite's tables, every column of each present (references may be missing: the floors
    are written after the runs).

    Raises:
        ReportError: a table missing or unreadable (an interrupted write, a damaged file), with
            the command that rebuilds the tables from the runs.
    """
    rebuild = f"rerun `python -m benchmarks.run --suite {suite_dir.name}` to rebuild the tables"
    tables = {}
    for name in ("runs", "curves", "evals", "references"):
        path = suite_dir / f"{name}.parquet"
        if not path.exists():
            if name != "references":
                raise ReportError(f"{suite_dir} has no {path.name}; {rebuild}")
            tables[name] = with_columns(pd.DataFrame(), name)
            continue
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:  # pyarrow's errors are ValueErrors
            reason = " ".join(str(error).split())[:200]
            raise ReportError(f"cannot read {path}: {reason}; {rebuild}") from None
        missing = [c for c in RUN_COLUMNS if c not in frame] if name == "runs" else []
        if missing:
            raise ReportError(f"{path} lacks column(s) {', '.join(missing)}; {rebuild}")
        tables[name] = with_columns(frame, name)
    try:
        _check_tables(tables)
        read_environment(suite_dir)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError included
        raise ReportError(f"{suite_dir}: {error}; {rebuild}") from None
    return tables


# Columns that hold numbers, in every suite's tables (the metrics' columns of runs.parquet too).
NUMERIC_COLUMNS = {
    "runs": ("seed", "width"),
    "curves": ("gen_iter", "elapsed_s", *gans.CURVE_COLUMNS),
    "evals": ("gen_iter", "elapsed_s", "value", "n_real", "n_fake"),
    "references": ("value", "n_real", "n_fake"),
}
STATUSES = (gans.DONE, gans.DIVERGED, FAILED)


def _check_tables(tables: dict[str, pd.DataFrame]) -> None:
    """Tables a report can be made of: runs, numbers where numbers belong, a known status, and
    curves and evaluations for every finished run. Raises: ValueError saying what is wrong."""
    runs = tables["runs"]
    if runs.empty:
        raise ValueError("runs.parquet has no runs")
    metrics = {f"{metric}{INCEPTION_SUFFIX}" for metric in tables["evals"]["metric"].dropna()}
    metrics |= set(tables["evals"]["metric"].dropna())
    numeric = {**NUMERIC_COLUMNS, "runs": (*NUMERIC_COLUMNS["runs"], *(metrics & set(runs)))}
    for name, columns in numeric.items():
        for column in columns:
            values = tables[name][column]
            if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
                raise ValueError(
                    f"{name}.parquet's {column} column holds {values.dtype}, not numbers"
                )
    if unknown := sorted({str(status) for status in runs["status"]} - set(STATUSES)):
        raise ValueError(
            f"runs.parquet has status {', '.join(unknown)}; known: {', '.join(STATUSES)}"
        )
    finished = runs[runs["status"].isin([gans.DONE, gans.DIVERGED])]
    for name in ("curves", "evals"):
        if lacking := sorted(set(finished["run_id"]) - set(tables[name]["run_id"])):
            raise ValueError(
                f"finished run {', '.join(lacking)} has no rows in {name}.parquet: the tables do "
                "not match the runs"
            )


KEYED_TABLES = ("runs", "curves", "evals")  # the tables with run_id and strategy columns


def load_results(suite_dirs: list[Path]) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """The tables of one suite, or of several combined, and each run's directory by run id.

    Combined, a run's id becomes ``suite/run_id`` (two suites may share a config, hence an id)
    and its strategy ``strategy (suite)``: every table, figure and test of the report then compares
    the suites' recipes as it compares strategies. Floors computed twice at the same counts are
    kept once.

    Raises:
        ReportError: as ``load_tables``; or two results directories of one suite name.
    """
    if len(suite_dirs) == 1:
        tables = load_tables(suite_dirs[0])
        return tables, {rid: suite_dirs[0] / rid for rid in tables["runs"]["run_id"]}
    names = [d.name for d in suite_dirs]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise ReportError(f"results of suite {', '.join(repeated)} given twice; give each once")
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in (*KEYED_TABLES, "references")}
    run_dirs = {}
    for suite_dir in suite_dirs:
        tables = load_tables(suite_dir)
        for name in KEYED_TABLES:
            frame = tables[name].copy()
            run_ids = frame["run_id"]
            frame["run_id"] = suite_dir.name + "/" + run_ids.astype(str)
            frame["strategy"] = frame["strategy"].astype(str) + f" ({suite_dir.name})"
            parts[name].append(frame)
            if name == "runs":
                run_dirs.update({f"{suite_dir.name}/{rid}": suite_dir / rid for rid in run_ids})
        parts["references"].append(tables["references"])
    combined = {
        name: pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        for name, frames in parts.items()
    }
    combined["references"] = combined["references"].drop_duplicates(ignore_index=True)
    return combined, run_dirs


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{seconds:.1f} s ({hours}:{minutes:02d}:{secs:02d})"


def header(
    suite_dirs: list[Path],
    runs: pd.DataFrame,
    evals: pd.DataFrame,
    here: dict,
    provenance: list[str],
) -> list[tuple[str, str]]:
    """Where the results and the report come from, as (label, value) pairs: one line per distinct
    ``provenance`` of the runs (``provenance_summary``) and the report's code (``here``), then
    what the suites' last invocations
    recorded (environment.json); with several suites, what they share is one line, and what
    differs one line per suite."""
    written = max(
        dt.datetime.fromtimestamp((d / "runs.parquet").stat().st_mtime, dt.UTC) for d in suite_dirs
    )
    several = len(suite_dirs) > 1
    environments = {d.name: read_environment(d) for d in suite_dirs}
    recorded = []
    for label in dict.fromkeys(k for env in environments.values() for k in env):
        values = {name: env.get(label, "—") for name, env in environments.items()}
        if len(set(values.values())) == 1:
            recorded += environment_lines({label: next(iter(values.values()))})
        else:
            recorded += [
                (f"{name}: {line}", value)
                for name, value in values.items()
                for line, _ in environment_lines({label: value})
            ]
    no_time = pd.Series(dtype=float)  # a suite whose runs all failed has no time columns
    total = sum(
        pd.to_numeric(runs.get(c, no_time), errors="coerce").sum() for c in ("train_s", "eval_s")
    )
    libraries = sorted(set(evals.get("library", pd.Series(dtype=str)).dropna()))
    counts = runs["status"].value_counts()
    return [
        ("suites" if several else "suite", ", ".join(d.name for d in suite_dirs)),
        ("results written", written.strftime("%Y-%m-%d %H:%M UTC")),
        ("report generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("report made by commit", code_of(here)),
        *(("trained by", line) for line in provenance),
        *recorded,
        ("metric libraries (from the results)", ", ".join(libraries) or "—"),
        ("runs", ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))),
        ("total time (train + eval, all runs)", _duration(total)),
    ]


def build_context(
    suite_dirs: list[Path], tables: dict[str, pd.DataFrame], run_dirs: dict[str, Path]
) -> dict:
    runs, curves, evals = tables["runs"], tables["curves"], tables["evals"]
    here = code_version()
    provenance, provenance_warnings = provenance_summary(runs, here)
    colours = palette(rs.strategy_order(runs))
    datasets = [
        _dataset_context(dataset, runs, curves, evals, tables["references"], run_dirs, colours)
        for dataset in dict.fromkeys(runs["dataset"])
    ]
    return {
        "suite": " + ".join(d.name for d in suite_dirs),
        "header": header(suite_dirs, runs, evals, here, provenance),
        "provenance_warnings": provenance_warnings + mixed_extractors(evals),
        "methods": METHODS,
        "metric_notes": [note for x, note in METRIC_NOTES.items() if _measured(x, runs, evals)],
        "setup": rs.setup_table(runs, evals),
        "datasets": datasets,
        "suite_figures": plots.suite_figures(runs, colours),
        "failures": rs.failures_table(runs),
    }


def mixed_extractors(evals: pd.DataFrame) -> list[str]:
    """One warning per dataset whose final metrics came from more than one classifier (runs
    evaluated with another --classifier-weights, or classifiers trained on machines of other
    CPU kinds): their values share columns but do not compare."""
    if not len(evals):
        return []
    final = evals[(evals["stage"] == rs.FINAL) & (evals["feature_extractor"] != INCEPTION)]
    found = final.groupby("dataset")["feature_extractor"].unique()
    return [
        f"{dataset}'s metrics come from {len(names)} feature extractors ({', '.join(names)}), "
        "which do not compare: its summary mixes them. Rerun its runs with one classifier "
        "(--fresh)."
        for dataset, names in found.items()
        if len(names) > 1
    ]


def _measured(metric: str, runs: pd.DataFrame, evals: pd.DataFrame) -> bool:
    return metric in runs or ("metric" in evals and (evals["metric"] == metric).any())


def _dataset_context(dataset, runs, curves, evals, floors, run_dirs, colours) -> dict:
    def of(frame):
        return frame[frame["dataset"] == dataset] if "dataset" in frame else frame.iloc[:0]

    ds_runs, ds_evals = of(runs), of(evals)
    reasons = rs.unavailable_reasons(ds_evals)
    metrics = rs.summary_metrics(ds_runs, ds_evals)
    computed = [x for x in metrics if x not in reasons]
    strategies = rs.strategy_order(ds_runs)
    values = rs.seed_values(ds_runs, ds_evals, computed)
    found = rs.comparisons(values, computed, strategies)
    refs = rs.references(ds_evals, of(floors))
    primary = answers.primary_metric(computed)
    quality = answers.time_to_quality(ds_runs, ds_evals, refs, primary) if primary else []
    threshold = None
    if primary and math.isfinite(value := answers.quality_threshold(refs, primary, rs.FINAL)):
        threshold = {
            "metric": primary,
            "value": value,
            "label": "quality threshold: halfway from untrained to real data",
        }
    along_the_way = ds_evals[ds_evals["stage"] != INITIAL] if len(ds_evals) else ds_evals
    threshold_value = threshold["value"] if threshold else math.nan
    return {
        "name": dataset,
        "answer": answers.answer(ds_runs, values, found, refs, quality, primary),
        "summary": rs.summary_table(ds_runs, values, metrics, refs, reasons),
        "unavailable": [f"{x}: {why}" for x, why in reasons.items()],
        "comparisons": rs.comparison_table(found),
        "too_few": rs.too_few_note(found),
        "figures": plots.dataset_figures(
            dataset, ds_runs, of(curves), along_the_way, run_dirs, colours, refs, values, threshold
        ),
        "animations": images.progress_animations(dataset, ds_runs, run_dirs, colours),
        "sweep": sweeps.section(dataset, ds_runs, refs, primary, threshold_value, colours),
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


def _figures(context) -> list[Figure]:
    return context["suite_figures"] + [
        f
        for d in context["datasets"]
        for f in d["figures"] + (d["sweep"]["figures"] if d["sweep"] else [])
    ]


# The figures (![title](name.png) on a line of their own) and animations ([label](name.gif)).
_FILE_LINK = re.compile(r"^!\[[^\]]*\]\(([a-z0-9-]+\.png)\)$|\]\(([a-z0-9-]+\.gif)\)", re.MULTILINE)


# In a report directory, the list of the files its report wrote: the files a later report may
# replace or remove. Nothing else in the directory is ever touched.
REPORT_MARKER = ".gans-report.json"
# The first line of the README.md of a report written before REPORT_MARKER existed.
_REPORT_TITLES = ("# GAN loss benchmark: ", "# GAN loss claims, checked by experiment")


def _earlier_files(out: Path) -> set[str]:
    """The files an earlier report wrote in ``out``: those this report may replace or remove, so
    a figure that is no longer drawn (a dataset left the suite) does not linger.

    Raises:
        ReportError: ``out`` holds files and no report of ours (a user's README.md, say), or a
            marker that cannot be read; nothing is written.
    """
    marker = out / REPORT_MARKER
    if marker.exists():
        try:
            return set(json.loads(marker.read_text(encoding="utf-8"))["files"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ReportError(
                f"--out {out}: its report marker {REPORT_MARKER} is unreadable "
                f"({type(error).__name__}); move the directory's files you want kept, delete "
                f"{REPORT_MARKER}, and write the report into an empty directory"
            ) from None
    readme = out / "README.md"
    if readme.exists() and readme.read_text(encoding="utf-8", errors="replace").startswith(
        _REPORT_TITLES
    ):  # a report of a version before the marker: the files its README links are its own
        linked = _FILE_LINK.findall(readme.read_text(encoding="utf-8", errors="replace"))
        return {png or gif for png, gif in linked} | {"README.md", "index.html"}
    # Ours too: what an interrupted first write of the marker left (write_atomically's temporary).
    if out.is_dir() and (
        found := sorted(p.name for p in out.iterdir() if not p.name.startswith(REPORT_MARKER))
    ):
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise ReportError(
            f"--out {out} holds files that no report of this suite wrote ({shown}); give a new "
            "or empty directory, or one that a report wrote"
        )
    return set()


def write_report(suite_dirs: Path | list[Path], out: Path) -> None:
    """Write the report of the results in ``suite_dirs`` (one suite's, or several compared) into
    ``out``, each file atomically: an interrupted write leaves each file whole, the earlier
    report's or this one's.

    Raises:
        ReportError: the tables cannot be read, or ``out`` cannot be written (nothing written).
    """
    suite_dirs = [suite_dirs] if isinstance(suite_dirs, Path) else list(suite_dirs)
    context = build_context(suite_dirs, *load_results(suite_dirs))
    html_env, md_env = environments()
    uris = data_uris(_figures(context))
    pages = {
        "index.html": html_env.get_template("report.html.j2").render(**context, uris=uris),
        "README.md": md_env.get_template("report.md.j2").render(**context),
    }
    animations = [a for d in context["datasets"] for a in d["animations"]]
    write_files(out, _figures(context), pages, animations)


def data_uris(figures: list[Figure]) -> dict[str, str]:
    """Each figure as a data: URI, so that index.html is one self-contained file."""
    return {
        f.name: "data:image/png;base64," + base64.b64encode(f.png).decode("ascii") for f in figures
    }


def write_files(
    out: Path, figures: list[Figure], pages: dict[str, str], animations: list = ()
) -> None:
    """The figures and animations, then the pages, each atomically, and ``REPORT_MARKER`` naming
    them; the files an earlier report in ``out`` wrote and this one does not are removed, and no
    other file is touched.

    Raises:
        ReportError: ``out`` cannot be created, or holds files that no report wrote.
    """
    earlier = _earlier_files(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"--out: cannot write to {out}: {error.strerror}") from None
    files = {f"{f.name}.png": f.png for f in figures} | {f"{a.name}.gif": a.gif for a in animations}
    files |= {name: page.encode("utf-8") for name, page in pages.items()}
    # The marker first, naming the earlier report's files and this one's: whichever write an
    # interrupt stops, a rerun may still replace them all.
    _write(out / REPORT_MARKER, json.dumps({"files": sorted(earlier | set(files))}).encode())
    for stale in earlier - set(files):
        (out / stale).unlink(missing_ok=True)
    for name, content in files.items():
        _write(out / name, content)
    _write(out / REPORT_MARKER, json.dumps({"files": sorted(files)}).encode())


def _write(path: Path, content: bytes) -> None:
    for stale in path.parent.glob(f"{path.name}*.tmp"):  # left by an interrupted write of it
        stale.unlink(missing_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(content))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite_dirs = [results.resolve() for results in args.results]
    out = args.out or Path("reports") / "+".join(d.name for d in suite_dirs)
    try:
        write_report(suite_dirs, out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {out / 'index.html'} and {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
