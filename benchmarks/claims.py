"""Check the published claims about these losses by experiment, and write their verdicts.

    python -m benchmarks.claims [--size cpu|paper] [--only ID[,ID]] [--out DIR] [--reports DIR]

Each claim's experiments run through the suite runner (results/claims/<size>/<experiment>/, so
they resume and skip like any suite; claims that share an experiment share its runs); then each
claim's measure reads the tables and its decision rule, alpha included, gives the verdict from
the claim's own data alone (benchmarks/claim.py), and the report is written to reports/claims/
(reports/claims-paper/ at paper size; with --only, reports/claims-<ids>/): a verdict table, then
a section per claim.

Exit status: 0 when every claim has a verdict, 1 when a run failed or a claim's measure raised
(the other claims still get theirs), 2 for bad input or a duration over an hour without
--accept-hours (nothing was started), 130 or 143 when stopped by SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import gans
from benchmarks import claims_builtin, claims_training  # noqa: F401  (register the built-ins)
from benchmarks.claim import (
    BUILTIN_ALPHA,
    CLAIMS,
    ERROR,
    EXACT_PERMUTATIONS,
    FAMILY_ALPHA,
    SIZES,
    SUPPORTED,
    Claim,
    ClaimError,
    Verdict,
    box_figure,
    measure_claim,
)
from benchmarks.provenance import (
    code_of,
    code_version,
    environment_lines,
    provenance_summary,
    read_environment,
)
from benchmarks.report import ReportError, data_uris, environments, load_tables, write_files
from benchmarks.report_figures import Drawing
from benchmarks.report_stats import Table, fmt
from benchmarks.run import (
    InputError,
    SuitePlan,
    add_run_options,
    check_writable,
    plan_suite,
    run_plan,
    stops_cleanly,
    training_estimate,
)
from benchmarks.store import FAILED
from benchmarks.suites import SuiteError, suite_from_document


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.claims",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", default="cpu", help="cpu (minutes on a laptop) or paper (a GPU)")
    p.add_argument("--only", help="comma-separated claim ids (python -m benchmarks.list)")
    p.add_argument(
        "--out", type=Path, default=Path("results/claims"), help="results root (results/claims/)"
    )
    p.add_argument(
        "--reports", type=Path, help="report directory (default: reports/claims, -paper at paper)"
    )
    p.add_argument(
        "--accept-hours",
        action="store_true",
        help="start even when the estimated training time here is over an hour",
    )
    add_run_options(p)
    return p.parse_args(argv)


def select(only: str | None) -> list[Claim]:
    known = CLAIMS.names()
    if only is None:
        return [CLAIMS.get(name) for name in known]
    chosen = [item.strip() for item in only.split(",") if item.strip()]
    if not chosen:
        raise InputError(f"--only: no claim given; known: {', '.join(known)}")
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise InputError(f"--only: unknown claim {', '.join(unknown)}; known: {', '.join(known)}")
    return [CLAIMS.get(name) for name in dict.fromkeys(chosen)]


def default_reports(claims: list[Claim], only: str | None, size: str) -> Path:
    """reports/claims (-paper at paper size) for every claim; with --only, a directory named by
    the selected claims, so that a selection never replaces the full report."""
    name = "claims" if only is None else "claims-" + "+".join(c.id for c in claims)
    return Path("reports") / (name if size == "cpu" else f"{name}-paper")


def experiments_of(claims: list[Claim], size: str) -> dict[str, dict]:
    """Each experiment's suite document once; two claims that give one name two documents are
    bad input."""
    documents: dict[str, dict] = {}
    for claim in claims:
        for experiment in claim.experiments:
            document = experiment.document(size)
            if documents.setdefault(experiment.name, document) != document:
                raise InputError(
                    f"claim {claim.id}: experiment {experiment.name} differs from the one of "
                    "that name in another claim; give one of them another name"
                )
    return documents


def datasets_needed(claims: list[Claim], name: str, document: dict) -> list[str]:
    """The datasets of experiment ``name`` that the selected claims read: a claim that names no
    datasets reads them all. Only these are trained, so a claim run alone costs what it reads."""
    needed = set()
    for claim in claims:
        if any(e.name == name for e in claim.experiments):
            needed |= set(claim.datasets or document["datasets"]) & set(document["datasets"])
    return [d for d in document["datasets"] if d in needed]


@stops_cleanly
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        if args.size not in SIZES:
            raise InputError(f"--size must be one of {', '.join(SIZES)}, got {args.size!r}")
        for plugin in args.plugin:
            gans.load_plugin(plugin)
        claims = select(args.only)
        documents = experiments_of(claims, args.size)
        suites = {name: suite_from_document(name, doc) for name, doc in documents.items()}
        results = args.out / args.size
        reports = args.reports or default_reports(claims, args.only, args.size)
        check_writable(results, "--out")
        check_writable(reports, "--reports")
        run_args = argparse.Namespace(
            **vars(args), seeds=None, strategies=None, datasets=None, no_report=True
        )
        run_args.out, run_args.reports = results, None
        # Every experiment checked (data, options, device) before the first run trains.
        plans = {}
        for name, suite in suites.items():
            run_args.datasets = ",".join(datasets_needed(claims, name, documents[name]))
            plans[name] = plan_suite(suite, run_args)
        _check_duration(plans, args)
    except (InputError, SuiteError, gans.RegistryError, gans.ConfigError, ClaimError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed_runs = False
    for name, plan in plans.items():
        datasets = ", ".join(dict.fromkeys(spec.train.dataset for spec in plan.specs))
        print(f"experiment {name}: {datasets}", flush=True)
        began = time.perf_counter()
        status = run_plan(plan, run_args)
        print(f"experiment {name}: {time.perf_counter() - began:.0f} s of wall-clock", flush=True)
        if status == 2:
            return 2  # another suite's results in its directory (run_plan's check under lock)
        failed_runs |= status == 1
    try:
        tables = {name: load_tables((results / name).resolve()) for name in suites}
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    verdicts = [measure_claim(claim, tables, args.size) for claim in claims]
    for verdict in verdicts:
        verdict.failed_runs = _failed_runs(verdict.claim, tables)
    costs = {c.id: _cost(c, tables) for c in claims}
    try:
        write_claims_report(
            verdicts, tables, costs, reports, args.size, results, time.perf_counter() - started
        )
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for verdict in verdicts:
        print(f"{verdict.claim.id}: {verdict.verdict} ({_effect(verdict)}; p {_p(verdict)})")
    print(f"report: {reports / 'index.html'} and {reports / 'README.md'}")
    errored = any(v.verdict == ERROR for v in verdicts)
    return 1 if failed_runs or errored else 0


LONG_S = 3600  # an estimate beyond an hour needs --accept-hours


def _check_duration(plans: dict[str, SuitePlan], args: argparse.Namespace) -> None:
    """Say how long the runs still to train will take here; beyond LONG_S, only with
    --accept-hours. Raises: InputError."""
    print("timing a few steps of each network to estimate the duration", flush=True)
    retrain = args.fresh or args.fresh_if_code_changed  # finished runs may train again
    estimates = [training_estimate(plan, retrain) for plan in plans.values()]
    seconds, runs = sum(e[0] for e in estimates), sum(e[1] for e in estimates)
    untimed = [reason for e in estimates for reason in e[2]]
    device = next(iter(plans.values())).device
    how_long = f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes"
    about = (
        f"about {how_long} of training on {device} for {runs} runs still to "
        f"train (their critic and generator steps, each timed here; evaluation comes on top)"
    )
    if untimed and not args.accept_hours:
        raise InputError(
            f"{len(untimed)} runs could not be timed ({untimed[0]}): give --accept-hours to "
            "start anyway"
        )
    if seconds > LONG_S and not args.accept_hours:
        smaller = "; or --size cpu" if args.size != "cpu" else ""
        raise InputError(f"--size {args.size}: {about}: give --accept-hours to start{smaller}")
    print(f"estimate: {about}", flush=True)


def _failed_runs(claim: Claim, tables) -> list[str]:
    found = []
    for experiment in claim.experiments:
        runs = tables[experiment.name]["runs"]
        for row in runs[runs["status"] == FAILED].to_dict("records"):
            found.append(
                f"{experiment.name}: {row['dataset']} {row['strategy']} seed {row['seed']}: "
                f"{row.get('message', '')}"
            )
    return found


def _cost(claim: Claim, tables) -> float:
    """Training plus evaluation seconds of every run of the claim's experiments on the datasets
    it reads (runs shared with other claims counted in each)."""
    total = 0.0
    for experiment in claim.experiments:
        runs = tables[experiment.name]["runs"]
        if claim.datasets:
            runs = runs[runs["dataset"].isin(claim.datasets)]
        for column in ("train_s", "eval_s"):
            total += pd.to_numeric(runs.get(column, pd.Series(dtype=float)), errors="coerce").sum()
    return float(total)


def _effect(v: Verdict) -> str:
    """The effect and its interval; never an effect where nothing was tested."""
    if v.groups is None or v.effect != v.effect:  # NaN: not tested
        return v.reason or "not tested"
    low, high = v.ci
    return f"effect {fmt(v.effect)} [{fmt(low)}, {fmt(high)}] ({v.claim.rule.confidence:.1%})"


def _p(v: Verdict) -> str:
    return "—" if v.p != v.p else f"{v.p:.2g} ({v.p_method})"


def verdict_table(verdicts: list[Verdict], costs: dict[str, float]) -> Table:
    table = Table(
        ["claim", "source", "outcome", "alpha", "effect [interval]", "p", "n"]
        + ["budget", "cost (CPU-s)"]
    )
    for v in verdicts:
        table.add(
            v.claim.id,
            v.claim.source,
            v.verdict,
            f"{v.claim.rule.alpha:g}",
            _effect(v),
            _p(v),
            v.n,
            v.claim.budget(v.size),
            fmt(costs[v.claim.id]),
        )
    return table


def _section(v: Verdict) -> dict:
    groups = v.groups
    figure = groups.figure if groups is not None and groups.figure is not None else None
    if figure is None and groups is not None:
        figure = _default_figure(v)
    return {
        "id": v.claim.id,
        "statement": v.claim.statement,
        "source": v.claim.source,
        "repeated_by": v.claim.repeated_by,
        "experiments": ", ".join(e.name for e in v.claim.experiments),
        "budget": v.claim.budget(v.size),
        "rule": v.claim.rule.text(),
        "verdict": v.verdict,
        "outcome": _outcome(v),
        "notes": list(groups.notes) if groups is not None else [],
        "failed_runs": v.failed_runs,
        "figure": figure.render() if figure is not None else None,
        "could_change": v.claim.could_change,
    }


def _outcome(v: Verdict) -> str:
    if v.groups is None:
        return v.reason
    g = v.groups
    text = (
        f"{g.value}: {g.higher_label} (claimed higher, n = {len(g.higher)}) against "
        f"{g.lower_label} (n = {len(g.lower)}); {_effect(v)}; p {_p(v)}."
    )
    outcome = f"{v.verdict[0].upper()}{v.verdict[1:]} at {v.claim.budget(v.size)}"
    return f"{text} {outcome}." if v.verdict == SUPPORTED else f"{text} {outcome}: {v.reason}."


def _default_figure(v: Verdict) -> Drawing:
    g = v.groups
    frame = pd.DataFrame(
        [{"group": g.higher_label, "value": x} for x in g.higher]
        + [{"group": g.lower_label, "value": x} for x in g.lower]
    )
    frame = frame[np.isfinite(frame["value"])]
    return box_figure(
        v.claim.id, v.claim.id, f"{g.value}, one point per seed.", frame, "group", "value"
    )


def write_claims_report(verdicts, tables, costs, out: Path, size: str, results: Path, wall_s):
    """reports/claims/: index.html (self-contained) and README.md with one figure per claim."""
    sections = [_section(v) for v in verdicts]
    first = next(iter(tables), None)
    env = read_environment(results / first) if first else {}
    runs = pd.concat([t["runs"] for t in tables.values()], ignore_index=True) if tables else None
    here = code_version()
    provenance, warnings = provenance_summary(runs, here) if runs is not None else ([], [])
    header = [
        ("size", size),
        ("report generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("report made by commit", code_of(here)),
        *(("trained by", line) for line in provenance),
        *environment_lines(env),
        ("claims command wall-clock", f"{wall_s:.0f} s (runs already done are not retrained)"),
    ]
    context = {
        "size": size,
        "header": header,
        "verdicts": verdict_table(verdicts, costs),
        "claims": sections,
        "method": METHOD,
        "provenance_warnings": warnings,
    }
    figures = [s["figure"] for s in sections if s["figure"] is not None]
    uris = data_uris(figures)
    html_env, md_env = environments()
    pages = {
        "index.html": html_env.get_template("claims.html.j2").render(**context, uris=uris),
        "README.md": md_env.get_template("claims.md.j2").render(**context),
    }
    write_files(out, figures, pages)


METHOD = (
    "Each claim names two groups and says which is higher on a per-seed value; its test, alpha "
    "and smallest effect that matters were written in the claim before any run. Error control is "
    f"per claim: the built-in claims are one family sharing alpha {FAMILY_ALPHA:g} in equal "
    f"parts ({BUILTIN_ALPHA:g} each, Bonferroni), a plugin's claims a family of their own, so a "
    "claim's outcome depends on its own data only, whichever other claims ran. The p-values are "
    "two-sided: Mann-Whitney's exact distribution, or with ties a permutation test of the "
    "rank-biserial correlation (every split of the values enumerated when there are at most "
    f"{EXACT_PERMUTATIONS:,}); Welch's t otherwise. Effects: the rank-biserial correlation for "
    "Mann-Whitney rules (+1: every value of the claimed-higher group above every value of the "
    "other), with Newcombe's score interval, which stays informative at complete separation; the "
    "difference of means with Welch's interval for Welch rules. Intervals are at 1 - 2 alpha, "
    "so that one clearing the smallest effect is a one-sided test at alpha. Outcomes: supported "
    "(p < alpha and the interval at or above the smallest effect), contradicted (p < alpha and "
    "the interval at or below minus it), no effect as large as claimed (the interval within plus "
    "or minus it: an equivalence result), undetermined (none of these: more seeds would narrow "
    "the interval), not testable at this budget (nothing to compare, e.g. every run censored; "
    "never shown as an effect). Diverged runs are data: each claim says how it counts them "
    "(usually as the worst value); failed runs (errors) are listed and left out. A verdict holds "
    "for the budget it was measured at, nothing more."
)


if __name__ == "__main__":
    sys.exit(main())
