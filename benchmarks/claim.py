"""A claim about GAN losses, the experiment that tests it and the rule that decides it.

A ``Claim`` is data plus a measure: its statement and source, the suites it needs (an
``Experiment`` at a ``cpu`` and a ``paper`` size), a measure that turns the suites' tables into
per-seed values of the two groups the claim compares, and the decision ``Rule`` fixed before any
result is seen. ``decide`` turns those values into a ``Verdict``: ``supported``, ``contradicted``
or ``inconclusive``, with the effect, its 95% bootstrap interval, the p-value before and after the
Holm correction across the claims of one report, and n.

Claims register like strategies: kebab-case ids, duplicates refused, and plugin packages add
theirs through the entry-point group ``gans.claims`` (or a ``--plugin`` file calling
``register_claim``). docs/claims.md shows a complete example.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import gans
from benchmarks.bootstrap import bootstrap_ci
from benchmarks.report_figures import Drawing, styled
from benchmarks.suites import SuiteError, suite_from_document

SIZES = ("cpu", "paper")
ALPHA = 0.05
MANN_WHITNEY, WELCH = "mann-whitney", "welch-t"
TESTS = {
    MANN_WHITNEY: "two-sided Mann-Whitney U test; effect: rank-biserial correlation "
    "P(claimed higher > lower) - P(lower > claimed higher), from -1 to +1",
    WELCH: "two-sided Welch t test; effect: difference of the groups' means",
}
SUPPORTED, CONTRADICTED, INCONCLUSIVE, ERROR = "supported", "contradicted", "inconclusive", "error"
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
    """The decision rule, fixed before the run: the test, its alpha (Holm-corrected across the
    claims of one report), and the smallest effect that counts, in the effect's units."""

    test: str
    smallest_effect: float
    alpha: float = ALPHA

    def text(self) -> str:
        return (
            f"{TESTS[self.test]}. Supported when the Holm-corrected p < {self.alpha:g} and the "
            f"effect is at least {self.smallest_effect:g} in the claimed direction; contradicted "
            f"when p < {self.alpha:g} and the effect is at least {self.smallest_effect:g} the "
            "other way; inconclusive otherwise."
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
    if not (_is_number(claim.rule.alpha) and 0 < claim.rule.alpha < 1):
        refuse(f"rule.alpha must be between 0 and 1, got {claim.rule.alpha!r}")
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
    """The outcome of one claim at one size. ``p_holm`` is filled by ``correct``."""

    claim: Claim
    size: str
    verdict: str
    reason: str = ""
    groups: Groups | None = None
    effect: float = math.nan
    ci: tuple[float, float] = (math.nan, math.nan)
    p: float = math.nan
    p_holm: float = math.nan
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
    """Run the claim's measure and test: a measure that raises gives the verdict ``error`` with
    its message; the p-value is corrected later, across the report's claims (``correct``)."""
    try:
        groups = claim.measure(tables, size)
        if not isinstance(groups, Groups):
            raise TypeError(f"measure must return a Groups, got {type(groups).__name__}")
        higher = np.asarray(groups.higher, dtype=float)
        lower = np.asarray(groups.lower, dtype=float)
    except Exception as error:
        return Verdict(claim, size, ERROR, f"the measure failed: {type(error).__name__}: {error}")
    groups = dataclasses.replace(groups, higher=higher, lower=lower)
    verdict = Verdict(claim, size, INCONCLUSIVE, groups=groups)
    problem = _unusable(higher, lower, claim.rule.test)
    if problem:
        verdict.reason = problem
        return verdict
    if claim.rule.test == MANN_WHITNEY:
        verdict.p = float(stats.mannwhitneyu(higher, lower, alternative="two-sided").pvalue)
        statistic = rank_biserial
    else:
        verdict.p = float(stats.ttest_ind(higher, lower, equal_var=False).pvalue)
        statistic = mean_difference
    verdict.effect = float(statistic(higher, lower))
    verdict.ci = bootstrap_ci((higher, lower), statistic)
    return verdict


def _unusable(higher: np.ndarray, lower: np.ndarray, test: str) -> str:
    if min(len(higher), len(lower)) < 2:
        return f"too few values to test: {len(higher)} vs {len(lower)}"
    if np.isnan(higher).any() or np.isnan(lower).any():
        return "the measure returned NaN values"
    if test == WELCH and not (np.isfinite(higher).all() and np.isfinite(lower).all()):
        return "Welch's t test needs finite values (a Mann-Whitney rule ranks diverged runs)"
    if test == WELCH and np.ptp(higher) == 0 and np.ptp(lower) == 0:
        return "no spread in either group: Welch's t test is undefined"
    return ""


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries, untested claims, are left out)."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(tested, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (len(tested) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def correct(verdicts: list[Verdict]) -> None:
    """Holm-correct the p-values across ``verdicts`` and decide each tested claim."""
    for verdict, p_holm in zip(verdicts, holm([v.p for v in verdicts]), strict=True):
        verdict.p_holm = p_holm
        if math.isnan(p_holm):
            continue
        rule = verdict.claim.rule
        verdict.verdict, verdict.reason = _decide(verdict.effect, p_holm, rule)


def _decide(effect: float, p_holm: float, rule: Rule) -> tuple[str, str]:
    if p_holm >= rule.alpha:
        return INCONCLUSIVE, f"p = {p_holm:.2g} after the Holm correction, not below {rule.alpha:g}"
    if effect >= rule.smallest_effect:
        return SUPPORTED, ""
    if effect <= -rule.smallest_effect:
        return CONTRADICTED, "the effect is significant and opposite to the claim"
    return INCONCLUSIVE, (
        f"significant, but the effect ({effect:.2g}) is smaller than the smallest that counts "
        f"({rule.smallest_effect:g})"
    )
