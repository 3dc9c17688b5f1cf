"""The report's numbers: setup, summary over seeds, pairwise comparisons and failed runs.

Everything here is a pure function of the results tables, and every random draw (the bootstrap)
is seeded, so regenerating a report from the same tables gives the same numbers. Tables come out
as ``Table``s of text cells that both templates (HTML and Markdown) render the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

import gans
from benchmarks.bootstrap import (
    MIN_SEEDS_FOR_CI,
    bootstrap_ci,
)
from benchmarks.store import FAILED, INCEPTION_SUFFIX, INITIAL
from gans import metrics as m
from gans.metrics_image import INCEPTION

# Directions follow the metrics' definitions: distances are lower-is-better, the rest higher.
IMAGE_METRICS = (m.FID, m.KID, m.DENSITY, m.COVERAGE, m.PRECISION, m.RECALL, m.IS)
SUMMARY_ORDER = (*IMAGE_METRICS, m.W1, m.MODES_COVERED, m.HIGH_QUALITY)
# Ratio-scale quantities (positive, spread growing with the value): compared on the log scale,
# their differences stated as ratios.
LOG_SCALE = (m.FID, m.W1)
ALPHA = 0.05


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *values, best=()) -> None:
        self.rows.append(
            [v if isinstance(v, Cell) else Cell(fmt(v), i in best) for i, v in enumerate(values)]
        )


def fmt(value) -> str:
    """Four significant digits (never fewer integer digits); "—" for a missing number."""
    if value is None or isinstance(value, str):
        return value or "—"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def plain(value) -> str:
    """A configuration value as written in a config file ("—" when unset)."""
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def direction(metric: str) -> int:
    """-1 when lower is better, +1 when higher is better, 0 when the metric has no better side."""
    base = metric.removesuffix(INCEPTION_SUFFIX)
    return -1 if base in m.LOWER_IS_BETTER else 1 if base in m.HIGHER_IS_BETTER else 0


def metric_name(metric: str) -> str:
    """How sentences name a metric: "FID", "modes covered", "KID (Inception)"."""
    base = metric.removesuffix(INCEPTION_SUFFIX)
    name = base.upper() if base in (m.FID, m.IS, m.KID, m.W1) else base.replace("_", " ")
    return f"{name} (Inception)" if base != metric else name


def log_scale(metric: str) -> bool:
    """Whether the metric is compared on the log scale (LOG_SCALE)."""
    return metric.removesuffix(INCEPTION_SUFFIX) in LOG_SCALE


def metric_label(metric: str) -> str:
    arrow = {-1: " ↓", 1: " ↑", 0: ""}[direction(metric)]
    return f"{metric}{arrow}"


def ordered_metrics(present) -> list[str]:
    """The summary metrics among ``present``, classifier-feature ones before Inception ones."""
    names = [*SUMMARY_ORDER, *(f"{n}{INCEPTION_SUFFIX}" for n in IMAGE_METRICS)]
    present = set(present)
    return [n for n in names if n in present]


def summary_metrics(runs: pd.DataFrame, evals: pd.DataFrame | None = None) -> list[str]:
    """The final-metric columns of ``runs`` with at least one value, and those that were asked
    for but could not be computed (NaN rows in ``evals`` with the reason)."""
    present = {c for c in runs.columns if runs[c].notna().any()}
    return ordered_metrics(present | set(unavailable_reasons(evals)))


def column_name(metric: str, feature_extractor: str) -> str:
    """The runs-table column of a metric row: Inception's metrics get a suffix of their own."""
    return f"{metric}{INCEPTION_SUFFIX}" if feature_extractor == INCEPTION else metric


def unavailable_reasons(evals: pd.DataFrame | None) -> dict[str, str]:
    """Final metrics that were requested but not computed -> why (the first reason recorded)."""
    if evals is None or evals.empty or "unavailable" not in evals:
        return {}
    missing = evals[(evals["stage"] == "final") & evals["value"].isna()]
    reasons: dict[str, str] = {}
    for row in missing[missing["unavailable"].notna()].itertuples():
        reasons.setdefault(column_name(row.metric, row.feature_extractor), row.unavailable)
    return {metric: reasons[metric] for metric in ordered_metrics(reasons)}


def finite(values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def interval_text(low: float, high: float) -> str:
    return f"[{fmt(low)}, {fmt(high)}]" if math.isfinite(low) else "[CI n/a]"


def estimate_text(values: np.ndarray) -> str:
    """Mean ± standard deviation [bootstrap CI] over seeds, as text."""
    if len(values) == 0:
        return "—"
    std = np.std(values, ddof=1) if len(values) > 1 else math.nan
    return f"{fmt(np.mean(values))} ± {fmt(std)} {interval_text(*bootstrap_ci((values,), np.mean))}"


def strategy_order(runs: pd.DataFrame) -> list[str]:
    """Strategies in the suite's order (first appearance), which fixes their colours too."""
    return list(dict.fromkeys(runs["strategy"]))


# -- every seed counts -------------------------------------------------------------------------

FINAL, LAST_GOOD = "final", "last evaluation before diverging"


def seed_values(runs: pd.DataFrame, evals: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (run, metric) of one dataset: the value the report counts for that seed.

    Finished runs count with their final value; a diverged run counts as worse than every
    finished one in rank statistics and shows its last evaluation before it diverged (``value``,
    ``counted`` = LAST_GOOD). Failed runs (an error, not a property of the loss) are listed
    elsewhere and left out here.
    """
    rows = []
    # Rows as dicts, not itertuples: namedtuples rename columns that are keywords ("is").
    for run in runs[runs["status"].isin([gans.DONE, gans.DIVERGED])].to_dict("records"):
        run = SimpleNamespace(
            **{k: run[k] for k in ("run_id", "strategy", "seed", "status")}, values=run
        )
        for metric in metrics:
            if run.status == gans.DONE:
                value, counted = run.values.get(metric, math.nan), FINAL
            else:
                value, counted = _last_good(evals, run.run_id, metric), LAST_GOOD
            rows.append(
                {
                    "run_id": run.run_id,
                    "strategy": run.strategy,
                    "seed": run.seed,
                    "status": run.status,
                    "metric": metric,
                    "value": float(value) if value is not None else math.nan,
                    "counted": counted,
                }
            )
    columns = ["run_id", "strategy", "seed", "status", "metric", "value", "counted"]
    return pd.DataFrame(rows, columns=columns)


def _last_good(evals: pd.DataFrame, run_id: str, metric: str) -> float:
    if evals.empty:
        return math.nan
    rows = evals[(evals["run_id"] == run_id) & (evals["stage"] != INITIAL) & evals["value"].notna()]
    rows = rows[
        [column_name(r, e) == metric for r, e in zip(rows["metric"], rows["feature_extractor"])]
    ]
    return float(rows.sort_values("gen_iter")["value"].iloc[-1]) if len(rows) else math.nan


@dataclass(frozen=True)
class Seeds:
    """One strategy's seeds on one metric: finished values and how many diverged."""

    finished: np.ndarray
    diverged: int

    @property
    def n(self) -> int:
        return len(self.finished) + self.diverged

    def ranked(self, metric: str) -> np.ndarray:
        """Values for a rank test: diverged seeds worse than any finished one."""
        worst = -math.inf if direction(metric) > 0 else math.inf
        return np.concatenate([self.finished, np.full(self.diverged, worst)])

    def diverged_text(self) -> str:
        return f"{self.diverged} of {self.n} diverged" if self.diverged else ""


def seeds_of(values: pd.DataFrame, strategy: str, metric: str) -> Seeds:
    rows = values[(values["strategy"] == strategy) & (values["metric"] == metric)]
    done = rows[rows["status"] == gans.DONE]
    return Seeds(finite(done["value"]), int((rows["status"] == gans.DIVERGED).sum()))


def ranking(values: pd.DataFrame, metric: str, strategies: list[str]) -> list[str]:
    """Strategies best first by the mean rank of their seeds among all seeds (diverged last)."""
    seeds = {s: seeds_of(values, s, metric) for s in strategies}
    seeds = {s: v for s, v in seeds.items() if v.n}
    if not seeds or not direction(metric):
        return list(seeds)
    pooled = np.concatenate([v.ranked(metric) for v in seeds.values()])
    ranks = stats.rankdata(-direction(metric) * pooled)  # rank 1 = best
    mean_rank, start = {}, 0
    for strategy, v in seeds.items():
        mean_rank[strategy] = ranks[start : start + v.n].mean()
        start += v.n
    return sorted(seeds, key=lambda s: mean_rank[s])


# -- pairwise comparisons ----------------------------------------------------------------------

WELCH, WELCH_LOG, RANK = "Welch t", "Welch t on log", "Mann-Whitney U"
YES, NO, BORDERLINE, TOO_FEW = "yes", "no", "borderline", "too few seeds"


@dataclass(frozen=True)
class Comparison:
    metric: str
    better: str
    worse: str
    difference: float  # the better strategy's advantage in mean, finished seeds (>= 0 or NaN)
    low: float  # bootstrap CI of the difference
    high: float
    ratio: float  # worse / better geometric-mean ratio for LOG_SCALE metrics; else NaN
    effect: float  # rank-biserial over every seed: +1 when every seed of `better` beats `worse`
    p_welch: float
    p_rank: float
    test: str  # the test that decides: WELCH, WELCH_LOG or RANK
    n_better: Seeds
    n_worse: Seeds
    significant: str  # YES, NO, BORDERLINE or TOO_FEW

    @property
    def p(self) -> float:
        return self.p_rank if self.test == RANK else self.p_welch


def smallest_p(n1: int, n2: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give with these sample sizes."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def welch(metric: str, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Welch's t-test of x vs y (on the log for ratio-scale metrics): (p, test name)."""
    log = log_scale(metric) and min(x.min(), y.min()) > 0
    u, v = (np.log(x), np.log(y)) if log else (x, y)
    if min(len(u), len(v)) < 2 or (np.ptp(u) == 0 and np.ptp(v) == 0):
        return math.nan, WELCH_LOG if log else WELCH
    return float(stats.ttest_ind(u, v, equal_var=False).pvalue), WELCH_LOG if log else WELCH


def compare(metric: str, a: str, x: Seeds, b: str, y: Seeds) -> Comparison:
    """Every seed of a vs every seed of b on one metric, the better strategy first.

    Better is decided by the rank test over every seed (diverged seeds worst), ties by the mean.
    """
    sign = direction(metric) or 1
    rank = stats.mannwhitneyu(x.ranked(metric), y.ranked(metric), alternative="two-sided")
    effect = sign * (2 * rank.statistic / (x.n * y.n) - 1)
    means_say_b = (
        len(x.finished) and len(y.finished) and sign * (y.finished.mean() - x.finished.mean()) > 0
    )
    if effect < 0 or (effect == 0 and means_say_b):
        return compare(metric, b, y, a, x)
    both = len(x.finished) and len(y.finished)
    difference = sign * (x.finished.mean() - y.finished.mean()) if both else math.nan
    if both and math.isclose(x.finished.mean(), y.finished.mean(), rel_tol=1e-9, abs_tol=1e-12):
        difference = 0.0  # equal means that differ only by float rounding in the summation
    low, high = (
        bootstrap_ci(
            (x.finished, y.finished),
            lambda u, v, axis=-1: sign * (np.mean(u, axis) - np.mean(v, axis)),
        )
        if both
        else (math.nan, math.nan)
    )
    ratio = math.nan
    if both and log_scale(metric) and min(x.finished.min(), y.finished.min()) > 0:
        ratio = float(np.exp(np.log(y.finished).mean() - np.log(x.finished).mean()))
    p_welch, welch_test = welch(metric, x.finished, y.finished) if both else (math.nan, WELCH)
    # Means cannot hold a diverged seed: the rank test, which can, decides when one diverged
    test = RANK if x.diverged or y.diverged or not math.isfinite(p_welch) else welch_test
    p = float(rank.pvalue) if test == RANK else p_welch
    excludes_zero = math.isfinite(low) and (low > 0 or high < 0)
    if min(x.n, y.n) < MIN_SEEDS_FOR_CI or (test == RANK and smallest_p(x.n, y.n) > ALPHA):
        significant = TOO_FEW
    elif difference == 0:
        significant = NO
    elif p < ALPHA:
        significant = YES if excludes_zero or test == RANK else BORDERLINE
    else:
        significant = BORDERLINE if excludes_zero else NO
    return Comparison(
        metric,
        a,
        b,
        difference,
        low,
        high,
        ratio,
        effect,
        p_welch,
        float(rank.pvalue),
        test,
        x,
        y,
        significant,
    )


def comparisons(
    values: pd.DataFrame, metrics: list[str], strategies: list[str]
) -> list[Comparison]:
    """Every pair of strategies on every metric with a better side, every seed counted."""
    found = []
    for metric in metrics:
        if not direction(metric):
            continue
        seeds = {s: seeds_of(values, s, metric) for s in strategies}
        usable = [s for s, v in seeds.items() if v.n and (len(v.finished) or v.diverged)]
        for a, b in combinations(usable, 2):
            if len(seeds[a].finished) or len(seeds[b].finished):
                found.append(compare(metric, a, seeds[a], b, seeds[b]))
    return found


def comparison_table(found: list[Comparison]) -> Table:
    table = Table(
        [
            "metric",
            "better",
            "worse",
            "difference",
            "95% CI",
            "ratio",
            "rank-biserial",
            "p",
            "test",
            "n",
            "significant",
        ]
    )
    for c in found:
        n = f"{c.n_better.n} vs {c.n_worse.n}"
        diverged = [
            f"{s}: {v.diverged_text()}"
            for s, v in ((c.better, c.n_better), (c.worse, c.n_worse))
            if v.diverged
        ]
        if diverged:
            n += f" ({'; '.join(diverged)})"
        table.add(
            c.metric,
            c.better,
            c.worse,
            c.difference,
            interval_text(c.low, c.high),
            f"{fmt(c.ratio)}x" if math.isfinite(c.ratio) else "—",
            c.effect,
            c.p,
            c.test,
            n,
            c.significant,
        )
    return table


def too_few_note(found: list[Comparison]) -> str | None:
    """The one line per dataset that says when there are too few seeds to conclude."""
    few = [c for c in found if c.significant == TOO_FEW]
    if not few:
        return None
    smallest = min(min(c.n_better.n, c.n_worse.n) for c in few)
    return (
        f"Too few seeds to conclude for {len(few)} of {len(found)} comparisons: a strategy has "
        f"{smallest} seed(s); at least {MIN_SEEDS_FOR_CI} per strategy are needed for an interval "
        f"and, with diverged seeds, enough for the rank test to reach p < {ALPHA} "
        f"(3 vs 3: smallest p = {smallest_p(3, 3):.2f}; 4 vs 4: {smallest_p(4, 4):.3f})."
    )


# -- the summary table -------------------------------------------------------------------------

REAL_DATA, UNTRAINED = "real data", "untrained"
REFERENCE_LABELS = {REAL_DATA: "real data (floor)", UNTRAINED: "untrained (iteration 0)"}


def references(evals: pd.DataFrame, floors: pd.DataFrame) -> pd.DataFrame:
    """The reference values of one dataset: columns reference, stage, metric, value.

    ``floors`` (references.parquet) holds real data scored against real data at the runs' sample
    counts; the untrained generators are every run's evaluations at generator iteration 0, averaged
    (stage "initial" is the final plan's evaluation, so it is filed under "final")."""
    rows = [
        (REAL_DATA, r.stage, column_name(r.metric, r.feature_extractor), r.value)
        for r in floors.itertuples()
    ]
    if not evals.empty:
        zero = evals[(evals["gen_iter"] == 0) & evals["value"].notna()]
        grouped = zero.groupby(["stage", "metric", "feature_extractor"])["value"].mean()
        for (stage, metric, extractor), value in grouped.items():
            stage = FINAL if stage == INITIAL else stage
            rows.append((UNTRAINED, stage, column_name(metric, extractor), value))
    return pd.DataFrame(rows, columns=["reference", "stage", "metric", "value"])


def reference_value(refs: pd.DataFrame, reference: str, stage: str, metric: str) -> float:
    rows = refs[
        (refs["reference"] == reference) & (refs["stage"] == stage) & (refs["metric"] == metric)
    ]
    return float(rows["value"].mean()) if len(rows) else math.nan


def summary_table(
    runs: pd.DataFrame,
    values: pd.DataFrame,
    metrics: list[str],
    refs: pd.DataFrame,
    reasons: dict[str, str],
) -> Table:
    """One row per strategy of one dataset (final metrics over seeds, counts, time), then the
    reference rows: real data against real data, and the untrained generators."""
    table = Table(
        ["strategy", "seeds", "done", "diverged", "failed"]
        + [metric_label(x) for x in metrics]
        + ["s / gen iter", "total s"]
    )
    strategies = strategy_order(runs)
    best = {x: ranking(values, x, strategies)[:1] for x in metrics if x not in reasons}
    for strategy in strategies:
        rows = runs[runs["status"].notna() & (runs["strategy"] == strategy)]
        statuses = rows["status"].tolist()
        per_iter = finite(rows.get("train_s", np.nan) / rows.get("gen_iters", np.nan))
        total = finite(rows.get("train_s", np.nan)).sum() + finite(rows.get("eval_s", np.nan)).sum()
        cells = [
            strategy,
            len(rows),
            statuses.count(gans.DONE),
            statuses.count(gans.DIVERGED),
            statuses.count(FAILED),
        ]
        for x in metrics:
            if x in reasons:
                cells.append("not computed (see below)")
                continue
            seeds = seeds_of(values, strategy, x)
            text = estimate_text(seeds.finished)
            if seeds.diverged:
                text += f"; {seeds.diverged_text()}"
            cells.append(Cell(text, strategy in best.get(x, ())))
        cells += [per_iter.mean() if len(per_iter) else math.nan, total]
        table.add(*cells)
    for reference, label in REFERENCE_LABELS.items():
        final = (
            refs[(refs["reference"] == reference) & (refs["stage"] == FINAL)] if len(refs) else refs
        )
        if final.empty:
            continue
        by_metric = final.groupby("metric")["value"].mean()
        cells = [label, "", "", "", ""] + [by_metric.get(x, math.nan) for x in metrics] + ["", ""]
        table.add(*cells)
    return table


def setup_table(runs: pd.DataFrame, evals: pd.DataFrame) -> Table:
    """Each (dataset, strategy)'s resolved hyperparameters, model, budget, evaluation and speedups,
    from the runs table (a column that older results lack shows as "—")."""
    table = Table(
        ["dataset", "strategy", "optimizer", "lr", "betas", "n_critic", "penalty weight"]
        + ["clip value", "other", "arch", "width", "critic norm", "batch", "budget"]
        + ["evaluation", "features", "critic calls", "speedups", "stacked runs"]
    )
    known = {"optimizer", "lr", "betas", "n_critic", "penalty_weight", "clip_value"}
    for (dataset, strategy), rows in runs.groupby(["dataset", "strategy"], sort=False):
        first = rows.iloc[0]
        hp = json.loads(first.get("hparams") or "{}")
        betas = hp.get("betas")
        other = ", ".join(f"{k}={plain(v)}" for k, v in hp.items() if k not in known)
        budget = "—"
        if _present(first.get("budget_s")):
            budget = f"{fmt(first['budget_s'])} s"
        elif _present(first.get("budget_epochs")):
            budget = f"{int(first['budget_epochs'])} epochs"
            if _present(first.get("budget_gen_iters")):
                budget += f" ({int(first['budget_gen_iters'])} gen iters)"
        elif _present(first.get("budget_gen_iters")):
            budget = f"{int(first['budget_gen_iters'])} gen iters"
        evaluation = "—"
        if _present(first.get("eval_every")):
            evaluation = (
                f"every {int(first['eval_every'])} iters on {int(first['intermediate_samples'])}, "
                f"final on {int(first['final_samples'])} samples"
            )
        used = evals[(evals["run_id"].isin(rows["run_id"])) & (evals["stage"] == "final")]
        features = ", ".join(sorted(set(used.get("feature_extractor", pd.Series()).dropna())))
        table.add(
            dataset,
            strategy,
            hp.get("optimizer"),
            plain(hp.get("lr")),
            ", ".join(map(plain, betas)) if betas else None,
            gans.critic_schedule(hp["n_critic"]).describe() if "n_critic" in hp else None,
            plain(hp.get("penalty_weight")),
            plain(hp.get("clip_value")),
            other,
            first["arch"],
            first["width"],
            first.get("critic_norm") or "—",
            first.get("batch_size"),
            budget,
            evaluation,
            features or first.get("extractors") or "—",
            "; ".join(sorted(set(rows.get("critic_calls", pd.Series()).dropna()))) or "—",
            "; ".join(sorted(set(rows.get("speedups", pd.Series()).dropna()))) or "—",
            # How many runs trained together as one batched model (1: alone); older runs: —.
            ", ".join(str(int(k)) for k in sorted(set(rows.get("stack", pd.Series()).dropna())))
            or "—",
        )
    return table


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def failures_table(runs: pd.DataFrame) -> Table:
    """Every run that did not finish normally, with the step it stopped at and why."""
    table = Table(["dataset", "strategy", "seed", "run", "status", "step", "message"])
    for _, row in runs[runs["status"] != gans.DONE].iterrows():
        step = row.get("diverged_at")
        if step is None or not np.isfinite(step):
            step = row.get("gen_iters")
        step = int(step) if step is not None and np.isfinite(step) else None
        table.add(
            row["dataset"],
            row["strategy"],
            row["seed"],
            row["run_id"],
            row["status"],
            step,
            row.get("message"),
        )
    return table
