"""A claim about GAN losses, the experiment that tests it and the rule that decides it.

A ``Claim`` is data plus a measure: its statement and source, the suites it needs (an
``Experiment`` at a ``cpu`` and a ``paper`` size), a measure that turns the suites' tables into
per-seed values of the two groups the claim compares, and the decision ``Rule`` fixed before any
result is seen, its alpha included. ``measure_claim`` turns those values into a ``Verdict`` from
the claim's own data alone: the effect, its interval, an exact (or permutation) p-value, and one
of the OUTCOMES.

Claims register like strategies: kebab-case ids, duplicates refused, and plugin packages add
theirs through the entry-point group ``gans.claims`` (or a ``--plugin`` file calling
``register_claim``). docs/claims.md shows a complete example.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

import gans
from benchmarks.report_figures import Drawing, styled
from benchmarks.suites import SuiteError, suite_from_document

SIZES = ("cpu", "paper")
# Error control per claim, fixed before any run: the claims of one family share FAMILY_ALPHA
# (weighted Bonferroni: the alphas written in the claims sum to at most it), so a claim's verdict
# depends on its own data only, whichever other claims run with it. The built-in claims are one
# family of ten, with equal weights; a plugin's claims are a family of their own (docs/claims.md).
FAMILY_ALPHA = 0.05
BUILTIN_ALPHA = FAMILY_ALPHA / 10
MANN_WHITNEY, WELCH = "mann-whitney", "welch-t"
TESTS = {
    MANN_WHITNEY: "two-sided Mann-Whitney U test, exact (a permutation test of the rank-biserial "
    "correlation when values tie); effect: the rank-biserial correlation P(claimed higher > "
    "lower) - P(lower > claimed higher), from -1 to +1, with Newcombe's (2006, method 5) interval",
    WELCH: "two-sided Welch t test; effect: the difference of the groups' means, with Welch's "
    "interval",
}
SUPPORTED, CONTRADICTED = "supported", "contradicted"
NO_EFFECT = "no effect as large as claimed"
UNDETERMINED = "undetermined"
NOT_TESTABLE = "not testable at this budget"
ERROR = "error"  # the measure failed: not an outcome of the data
OUTCOMES = (SUPPORTED, CONTRADICTED, NO_EFFECT, UNDETERMINED, NOT_TESTABLE)
# Ties make the exact Mann-Whitney distribution a permutation one: enumerated up to this many
# splits of the values into the two groups (15 vs 15 has 155 million), else drawn at random.
EXACT_PERMUTATIONS = 200_000
RANDOM_PERMUTATIONS = 100_000  # p's Monte Carlo standard error <= 0.0016 (at p = 0.5)
ENTRY_POINT_GROUP = "gans.claims"

# The tables of one experiment's suite, as benchmarks.report.load_tables reads them.
Tables = Mapping[str, pd.DataFrame]


class ClaimError(gans.RegistryError):
    """A malformed claim definition: one line naming the claim and what is wrong."""


@dataclass(frozen=True)
class Experiment:
    """A suite a claim needs, at both sizes: ``cpu`` runs on a laptop within minutes, ``paper``
    is the published setting sized for a GPU. Each is a suite document (the contents of a suite
    file as a dict); claims that name the same experiment share its runs."""

    name: str
    cpu: dict[str, Any]
    paper: dict[str, Any]

    def document(self, size: str) -> dict[str, Any]:
        return {"cpu": self.cpu, "paper": self.paper}[size]


@dataclass(frozen=True)
class Rule:
    """The decision rule, fixed before the run: the test, the smallest effect that matters (in
    the effect's units), and the claim's alpha, its share of its family's FAMILY_ALPHA."""

    test: str
    smallest_effect: float
    alpha: float = FAMILY_ALPHA  # a plugin's only claim; a family of several shares it out
    # The effect the claim asserts, which seeds are planned for (power): for a rank-biserial,
    # None is midway between the smallest effect and the largest possible, 1.
    planned_effect: float | None = None
    target_power: float = 0.8  # the power the seeds are planned for

    @property
    def planning_effect(self) -> float | None:
        if self.planned_effect is not None:
            return self.planned_effect
        return (self.smallest_effect + 1) / 2 if self.test == MANN_WHITNEY else None

    @property
    def confidence(self) -> float:
        """The level of the effect's interval: 1 - 2 alpha, so that its lower bound clearing the
        smallest effect is a one-sided test at alpha (and lying inside it, two: an equivalence
        test, TOST)."""
        return 1 - 2 * self.alpha

    def text(self) -> str:
        d, a, c = self.smallest_effect, self.alpha, self.confidence
        return (
            f"{TESTS[self.test]}. Alpha {a:g}; the effect's interval at {c:.1%}. Supported when "
            f"p < {a:g} and the interval lies at or above {d:g}; contradicted when p < {a:g} and "
            f"it lies at or below -{d:g}; no effect as large as claimed when it lies within "
            f"(-{d:g}, {d:g}); undetermined otherwise; not testable when the measure has nothing "
            "to compare at this budget."
        )


@dataclass(frozen=True)
class Groups:
    """What a measure returns: one value per seed (or run) for the group the claim says is higher
    and for the other, with what the values are; ``notes`` carry secondary numbers (a divergence
    rate, a variance) and ``figure`` the claim's figure (default: the values per group)."""

    higher_label: str
    higher: np.ndarray
    lower_label: str
    lower: np.ndarray
    value: str
    notes: tuple[str, ...] = ()
    figure: Drawing | None = None


Measure = Callable[[dict[str, Tables], str], Groups]


class NotTestable(Exception):
    """Raised by a measure that has nothing to compare at this budget (e.g. no run reached a
    time-to-quality threshold); its message says why. The outcome is NOT_TESTABLE."""


def box_figure(name: str, title: str, caption: str, frame: pd.DataFrame, x: str, y: str, hue=None):
    """A claim's figure: a box per group of ``x`` (and ``hue``) with every value as a point."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    style, context = styled()
    with style, context:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        sns.boxplot(frame, x=x, y=y, hue=hue, ax=ax, fill=False, showfliers=False)
        # A swarm, not a jittered strip: the same values give the same figure, byte for byte.
        sns.swarmplot(frame, x=x, y=y, hue=hue, ax=ax, dodge=hue is not None, legend=False)
        ax.set_xlabel("")
        if hue is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1))  # beside the data
    return Drawing(name, title, caption, fig)


@dataclass(frozen=True)
class Claim:
    """A published claim, how to test it, and the decision rule.

    Attributes:
        id: kebab-case, e.g. "gan-mode-collapse".
        statement: the claim in one sentence.
        source: the paper with section or figure.
        repeated_by: the popular write-up that repeats it, if any.
        experiments: the suites whose tables the measure reads.
        measure: ``measure(tables_by_experiment, size) -> Groups``.
        rule: the decision rule.
        could_change: what might change the verdict (a larger budget, another dataset).
        datasets: the datasets the measure reads, when not every one of its experiments'
            (the budget names only these).
    """

    id: str
    statement: str
    source: str
    experiments: tuple[Experiment, ...]
    measure: Measure
    rule: Rule
    repeated_by: str = ""
    could_change: str = ""
    datasets: tuple[str, ...] = ()

    def budget(self, size: str) -> str:
        """The budget the verdict is measured at, from the experiments' documents."""
        parts = []
        for experiment in self.experiments:
            document = experiment.document(size)
            seeds = len(document.get("seeds", [0]))
            runs = f"{seeds} seeds"
            if "sweep" in document:
                samples = document["sweep"]["samples"]
                runs = f"{samples} sampled settings per strategy x {runs}"
            for dataset, table in document["datasets"].items():
                if self.datasets and dataset not in self.datasets:
                    continue
                iters = table.get("gen_iters", 10_000)
                parts.append(f"{dataset}: {iters:,} generator iterations x {runs}")
        return "; ".join(dict.fromkeys(parts))


def _check(claim_id: str, claim: Claim) -> None:
    def refuse(problem: str):
        raise ClaimError(f"claim {claim_id!r}: {problem}")

    if not isinstance(claim, Claim):
        refuse(f"must be a benchmarks.claim.Claim, got {type(claim).__name__}")
    if claim.id != claim_id:
        refuse(f"registered under {claim_id!r} but its id is {claim.id!r}")
    for name in ("statement", "source"):
        if not (isinstance(getattr(claim, name), str) and getattr(claim, name).strip()):
            refuse(f"{name} must be a non-empty string")
    if not callable(claim.measure):
        refuse("measure must be a function of (tables by experiment, size)")
    if not isinstance(claim.rule, Rule) or claim.rule.test not in TESTS:
        refuse(f"rule must be a Rule whose test is one of {', '.join(TESTS)}")
    if not (_is_number(claim.rule.smallest_effect) and claim.rule.smallest_effect >= 0):
        refuse(f"rule.smallest_effect must be a number >= 0, got {claim.rule.smallest_effect!r}")
    if not (_is_number(claim.rule.alpha) and 0 < claim.rule.alpha < 0.5):
        refuse(f"rule.alpha must be between 0 and 0.5, got {claim.rule.alpha!r}")
    if not (_is_number(claim.rule.target_power) and 0 < claim.rule.target_power < 1):
        refuse(f"rule.target_power must be between 0 and 1, got {claim.rule.target_power!r}")
    planned = claim.rule.planned_effect
    if planned is not None and not (
        _is_number(planned)
        and planned > claim.rule.smallest_effect
        and (claim.rule.test != MANN_WHITNEY or planned <= 1)
    ):
        refuse(
            "rule.planned_effect must be a number above smallest_effect (at most 1 for "
            f"mann-whitney), got {planned!r}"
        )
    experiments = claim.experiments
    if not (isinstance(experiments, tuple) and experiments):
        refuse("experiments must be a non-empty tuple of Experiment")
    names = [e.name for e in experiments if isinstance(e, Experiment)]
    if len(names) != len(experiments):
        refuse("experiments must be a non-empty tuple of Experiment")
    if len(set(names)) != len(names):
        refuse(f"experiments repeat a name: {', '.join(names)}")
    available = {d for e in experiments for s in SIZES for d in e.document(s)["datasets"]}
    if not isinstance(claim.datasets, tuple) or not set(claim.datasets) <= available:
        refuse(f"datasets must be a tuple of its experiments' datasets ({', '.join(available)})")
    for experiment in experiments:
        for size in SIZES:
            try:
                suite_from_document(experiment.name, experiment.document(size))
            except SuiteError as error:
                refuse(f"experiment {experiment.name} at size {size}: {error}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


CLAIMS: gans.Registry[Claim] = gans.Registry(
    "claim",
    check=_check,
    unknown_hint="add one with --plugin FILE or an installed package (entry points gans.claims)",
)


def register_claim(claim: Claim, provider: str | None = None) -> Claim:
    """Register ``claim`` under its id; a malformed one is refused with one ``ClaimError``."""
    return CLAIMS.register(getattr(claim, "id", None), claim, provider)


def _register_entry_point(name: str, claim: Claim, provider: str) -> None:
    if getattr(claim, "id", None) != name:
        raise ClaimError(
            f"{provider}: the entry point's name must be the claim's id, "
            f"{getattr(claim, 'id', None)!r}"
        )
    register_claim(claim, provider)


CLAIMS.add_lazy_loader(lambda: gans.register_entry_points(ENTRY_POINT_GROUP, _register_entry_point))


@dataclass
class Verdict:
    """The outcome of one claim at one size, from its own data only."""

    claim: Claim
    size: str
    verdict: str  # one of OUTCOMES, or ERROR
    reason: str = ""
    groups: Groups | None = None
    effect: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)  # at claim.rule.confidence
    p: float = math.nan
    p_method: str = ""  # how p was computed: exact, exact permutation, random permutation, t
    failed_runs: list[str] = field(default_factory=list)

    @property
    def n(self) -> str:
        if self.groups is None:
            return "—"
        return f"{len(self.groups.higher)} vs {len(self.groups.lower)}"


def rank_biserial(higher, lower, axis=-1):
    """P(higher > lower) - P(lower > higher) over every pair; infinities compare as values, so a
    diverged run coded as inf ranks beyond every finished one (and ties another diverged one)."""
    higher = np.moveaxis(np.asarray(higher), axis, -1)
    lower = np.moveaxis(np.asarray(lower), axis, -1)
    above = higher[..., :, None] > lower[..., None, :]
    below = higher[..., :, None] < lower[..., None, :]
    return np.mean(above.astype(float) - below, axis=(-2, -1))


def mean_difference(higher, lower, axis=-1):
    return np.mean(higher, axis=axis) - np.mean(lower, axis=axis)


def measure_claim(claim: Claim, tables: dict[str, Tables], size: str) -> Verdict:
    """Run the claim's measure, test and decide. A measure that raises gives ``error`` with its
    message (``NotTestable``: the outcome NOT_TESTABLE with its reason)."""
    try:
        groups = claim.measure(tables, size)
        if not isinstance(groups, Groups):
            raise TypeError(f"measure must return a Groups, got {type(groups).__name__}")
        higher = np.asarray(groups.higher, dtype=float)
        lower = np.asarray(groups.lower, dtype=float)
    except NotTestable as reason:
        return Verdict(claim, size, NOT_TESTABLE, str(reason))
    except Exception as error:
        return Verdict(claim, size, ERROR, f"the measure failed: {type(error).__name__}: {error}")
    groups = dataclasses.replace(groups, higher=higher, lower=lower)
    return decide(claim, size, groups)


def decide(claim: Claim, size: str, groups: Groups) -> Verdict:
    """The verdict of ``groups`` under ``claim.rule``: test, effect, interval, outcome."""
    rule, higher, lower = claim.rule, groups.higher, groups.lower
    verdict = Verdict(claim, size, NOT_TESTABLE, groups=groups)
    if problem := _untestable(higher, lower, rule.test):
        verdict.reason = problem
        return verdict
    if rule.test == MANN_WHITNEY:
        verdict.p, verdict.p_method = mann_whitney_p(higher, lower)
        verdict.effect = float(rank_biserial(higher, lower))
        verdict.ci = rank_biserial_interval(
            verdict.effect, len(higher), len(lower), rule.confidence
        )
    else:  # one Welch test gives both the p and the interval
        welch = stats.ttest_ind(higher, lower, equal_var=False)
        verdict.p, verdict.p_method = float(welch.pvalue), "Welch's t"
        verdict.effect = float(mean_difference(higher, lower))
        low, high = welch.confidence_interval(rule.confidence)
        verdict.ci = float(low), float(high)
    verdict.verdict, verdict.reason = _outcome(verdict.ci, verdict.p, rule)
    return verdict


def mann_whitney_p(higher: np.ndarray, lower: np.ndarray) -> tuple[float, str]:
    """The two-sided Mann-Whitney p and how it was computed: exact without ties (scipy's exact
    distribution of U); with ties, a permutation test of the rank-biserial correlation,
    enumerating every split up to EXACT_PERMUTATIONS, else RANDOM_PERMUTATIONS drawn with a
    fixed seed."""
    values = np.concatenate([higher, lower])
    if len(np.unique(values)) == len(values):
        return float(stats.mannwhitneyu(higher, lower, method="exact").pvalue), "exact"
    splits = math.comb(len(values), len(higher))
    exact = splits <= EXACT_PERMUTATIONS
    result = stats.permutation_test(
        (higher, lower),
        rank_biserial,
        permutation_type="independent",
        vectorized=True,
        n_resamples=np.inf if exact else RANDOM_PERMUTATIONS,
        rng=np.random.default_rng(0),
    )
    how = "exact permutation (ties)" if exact else f"{RANDOM_PERMUTATIONS:,} permutations (ties)"
    return float(result.pvalue), how


def rank_biserial_interval(effect: float, m: int, n: int, confidence: float) -> tuple[float, float]:
    """The interval of a rank-biserial correlation ``effect`` of ``m`` vs ``n`` values: Newcombe's
    (2006, Stat. Med. 25:559, method 5) score interval for theta = (effect + 1) / 2 = P(X > Y) +
    P(X = Y) / 2, mapped back. It stays inside [-1, 1] and is not degenerate at complete
    separation (where a bootstrap interval is [1, 1])."""
    theta, z = (effect + 1) / 2, stats.norm.ppf((1 + confidence) / 2)
    pairs = (m + n) / 2 - 1  # Newcombe's N* - 1: the Hanley-McNeil variance made symmetric

    def outside(t: float) -> float:  # > 0 where t lies outside the interval
        variance = t * (1 - t) * (1 + pairs * (1 - t) / (2 - t) + pairs * t / (1 + t)) / (m * n)
        return (theta - t) ** 2 - z * z * variance

    # The bounds are the roots of ``outside`` on either side of theta (theta itself is one when
    # it is 0 or 1, so each search starts a hair inside).
    low = optimize.brentq(outside, 0.0, theta * (1 - 1e-12)) if theta > 0 else 0.0
    high = optimize.brentq(outside, theta + (1 - theta) * 1e-12, 1.0) if theta < 1 else 1.0
    return 2 * low - 1, 2 * high - 1


def _untestable(higher: np.ndarray, lower: np.ndarray, test: str) -> str:
    if min(len(higher), len(lower)) < 2:
        return f"too few values to compare: {len(higher)} vs {len(lower)}"
    if np.isnan(higher).any() or np.isnan(lower).any():
        return "the measure returned NaN values"
    values = np.concatenate([higher, lower])
    if (values == values[0]).all():
        return f"every value of both groups is {values[0]:g}: nothing to compare"
    if test == WELCH and not np.isfinite(values).all():
        return "Welch's t test needs finite values (a Mann-Whitney rule ranks diverged runs)"
    if test == WELCH and np.ptp(higher) == 0 and np.ptp(lower) == 0:
        return "no spread in either group: Welch's t test is undefined"
    return ""


def _outcome(ci: tuple[float, float], p: float, rule: Rule) -> tuple[str, str]:
    low, high = ci
    d, a, c = rule.smallest_effect, rule.alpha, f"{rule.confidence:.1%}"
    if p < a and low >= d:
        return SUPPORTED, ""
    if p < a and high <= -d:
        return CONTRADICTED, f"p < {a:g} and the {c} interval lies at or below -{d:g}"
    if -d < low and high < d:
        return NO_EFFECT, f"the {c} interval lies within (-{d:g}, {d:g})"
    if p >= a:
        why = f"p = {p:.2g} is not below {a:g}"
    else:
        why = f"p < {a:g}, but the {c} interval [{low:.2g}, {high:.2g}] reaches inside ±{d:g}"
    return UNDETERMINED, f"{why}; more seeds would narrow the interval"


# --- power ----------------------------------------------------------------------------------
# How likely a Mann-Whitney claim is to come out ``supported`` with m vs n seeds when the true
# rank-biserial correlation is ``effect``: the outcome is a function of U (the pairs where the
# claimed-higher group is above) alone when values do not tie, so each U from 0 to m n is decided
# once, and U is drawn under a normal shift model with that correlation.

POWER_DRAWS = 20_000  # Monte Carlo standard error of a power <= 0.0036 (at power 0.5)


def u_null_distribution(m: int, n: int) -> np.ndarray:
    """P(U = u), u = 0 .. m n, of m vs n exchangeable values without ties: the number of ways
    to interleave them with u pairs above, over C(m + n, m) (the recursion f(m, n) = f(m - 1, n)
    shifted by n + f(m, n - 1), as scipy's exact Mann-Whitney distribution)."""
    ways = [[np.ones(1)] * (n + 1)]  # ways[i][j]: counts for i vs j values
    for i in range(1, m + 1):
        row = [np.ones(1)]
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1)
            counts[j : j + len(ways[i - 1][j])] += ways[i - 1][j]  # the largest value is of i
            counts[: len(row[j - 1])] += row[j - 1]  # the largest value is of j
            row.append(counts)
        ways.append(row)
    return ways[m][n] / math.comb(m + n, m)


@functools.lru_cache(maxsize=256)
def supported_by_u(rule: Rule, m: int, n: int) -> np.ndarray:
    """Whether each U = 0 .. m n gives ``supported`` under ``rule`` (m vs n values, no ties):
    the exact two-sided p of U (as scipy's) and Newcombe's interval of its effect."""
    null = u_null_distribution(m, n)
    below, above = np.cumsum(null), np.cumsum(null[::-1])[::-1]  # P(U <= u), P(U >= u)
    p = np.minimum(1.0, 2 * np.minimum(below, above))
    found = np.zeros(m * n + 1, dtype=bool)
    for u in range(m * n + 1):
        effect = 2 * u / (m * n) - 1
        interval = rank_biserial_interval(effect, m, n, rule.confidence)
        found[u] = _outcome(interval, p[u], rule)[0] == SUPPORTED
    return found


def power(rule: Rule, m: int, n: int, effect: float, draws: int = POWER_DRAWS) -> float:
    """P(``supported``) of a Mann-Whitney ``rule`` with m vs n seeds when the true rank-biserial
    correlation is ``effect``: normal values shifted by sqrt(2) Phi^-1((effect + 1) / 2), which
    gives P(X > Y) - P(X < Y) = effect; U drawn ``draws`` times with a fixed seed."""
    shift = math.sqrt(2) * stats.norm.ppf((effect + 1) / 2)
    rng = np.random.default_rng(0)
    higher = rng.normal(shift, 1.0, (draws, m, 1))
    lower = rng.normal(0.0, 1.0, (draws, 1, n))
    u = (higher > lower).sum(axis=(1, 2))
    return float(supported_by_u(rule, m, n)[u].mean())


SEEDS_MOST = 60  # the most seeds per group a plan considers


def seeds_for_power(
    rule: Rule, effect: float, target: float = 0.8, most: int = SEEDS_MOST, start: int = 2
) -> int | None:
    """The fewest seeds per group (equal groups, from ``start``) whose ``power`` at ``effect``
    reaches ``target``; None when even ``most`` do not."""
    for seeds in range(start, most + 1):
        if power(rule, seeds, seeds, effect) >= target:
            return seeds
    return None
