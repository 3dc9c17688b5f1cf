"""Claims: the decision rule on hand-made values (exact p-values, the interval at complete
separation, the five outcomes, one claim's verdict independent of the others), the registry's
refusals, and `python -m benchmarks.claims` end to end on a tiny plugin claim."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from chromium import assert_renders, needs_chromium
from scipy import stats

import gans
from benchmarks import claims
from benchmarks.claim import (
    CLAIMS,
    CONTRADICTED,
    ERROR,
    FAMILY_ALPHA,
    MANN_WHITNEY,
    NO_EFFECT,
    NOT_TESTABLE,
    OUTCOMES,
    POWER_DRAWS,
    SUPPORTED,
    UNDETERMINED,
    WELCH,
    Claim,
    Experiment,
    Groups,
    NotTestable,
    Rule,
    measure_claim,
    power,
    rank_biserial,
    register_claim,
    seeds_for_power,
    supported_by_u,
    u_null_distribution,
)

PLUGIN = Path(__file__).parent / "claims_plugin.py"
TINY_SUITE = {
    "seeds": [0],
    "strategies": ["gan"],
    "datasets": {"8gaussians": {"arch": "mlp", "gen_iters": 2}},
}


def synthetic_claim(
    higher, lower, test=MANN_WHITNEY, smallest=0.5, claim_id="synthetic", alpha=FAMILY_ALPHA
):
    groups = Groups("a", np.asarray(higher, dtype=float), "b", np.asarray(lower, dtype=float), "v")
    return Claim(
        id=claim_id,
        statement="a is higher than b.",
        source="synthetic",
        experiments=(Experiment("synthetic", TINY_SUITE, TINY_SUITE),),
        measure=lambda tables, size: groups,
        rule=Rule(test, smallest_effect=smallest, alpha=alpha),
    )


def decided(*claims_):
    return [measure_claim(c, {}, "cpu") for c in claims_]


RNG = np.random.default_rng(19)
LOW = RNG.normal(0.0, 1.0, 16)
HIGH = RNG.normal(6.0, 1.0, 16)
SAME = RNG.normal(0.0, 1.0, 16)


@pytest.mark.parametrize("test", [MANN_WHITNEY, WELCH])
def test_a_known_effect_is_supported_and_a_reversed_one_contradicted(test):
    smallest = 0.5 if test == MANN_WHITNEY else 1.0
    supported, reversed_ = decided(
        synthetic_claim(HIGH, LOW, test, smallest, "s1"),
        synthetic_claim(LOW, HIGH, test, smallest, "s3"),
    )
    assert supported.verdict == SUPPORTED and supported.p < 0.05
    assert reversed_.verdict == CONTRADICTED
    assert supported.effect == pytest.approx(-reversed_.effect)
    assert supported.ci == pytest.approx(tuple(-x for x in reversed_.ci[::-1]))
    if test == MANN_WHITNEY:  # sixteen of sixteen above: every pair, so +1
        assert supported.effect == pytest.approx(1.0) and supported.p_method == "exact"
    else:
        assert supported.effect == pytest.approx(HIGH.mean() - LOW.mean())
    low, high = supported.ci
    assert smallest <= low <= supported.effect <= high
    assert supported.n == "16 vs 16"


def test_exact_p_values_at_complete_separation():
    """The smallest two-sided p of m vs n values is 2 / C(m + n, m): 5 vs 5 cannot reach alpha
    0.005 (2/252 = 0.0079), 6 vs 6 can (2/924 = 0.0022); 15 vs 15 is 1.3e-8 exactly, where the
    normal approximation gave 3.4e-6."""
    for n, expected in ((5, 2 / 252), (6, 2 / 924), (15, 2 / math.comb(30, 15))):
        (v,) = decided(synthetic_claim(np.arange(n) + 100.0, np.arange(n), alpha=0.005))
        assert v.p == pytest.approx(expected, rel=1e-9) and v.p_method == "exact"
        assert (v.p < 0.005) == (n >= 6)


def test_ties_take_a_permutation_test_exact_when_the_splits_are_few():
    # Diverged runs coded as inf tie each other: the exact distribution of every split.
    higher, lower = [math.inf, math.inf, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 0.5, 0.0]
    (v,) = decided(synthetic_claim(higher, lower))
    assert v.p_method == "exact permutation (ties)"
    # By hand: the statistic of every one of the C(10, 5) = 252 splits, two-sided as scipy's.
    values = np.array(higher + lower)
    observed = rank_biserial(higher, lower)
    splits = [
        rank_biserial(values[list(c)], values[[i for i in range(10) if i not in c]])
        for c in itertools.combinations(range(10), 5)
    ]
    one_sided = min(np.mean(np.array(splits) >= observed), np.mean(np.array(splits) <= observed))
    assert v.p == pytest.approx(min(1.0, 2 * one_sided), rel=1e-9)
    many = decided(synthetic_claim(np.r_[HIGH, math.inf], np.r_[LOW, math.inf]))[0]
    assert many.p_method == "100,000 permutations (ties)" and many.p < 1e-3


def test_the_interval_stays_informative_at_complete_separation():
    """Newcombe's interval at 1 - 2 alpha = 90% for a perfect 6 vs 6: [0.527, 1], not the
    bootstrap's [1, 1]. Its lower bound is checked against Newcombe's (2006, method 5) defining
    equation, written out here: (theta_hat - theta)^2 = z^2 V(theta), crossing from outside
    to inside the interval at the bound (a sign change 1e-6 either side, 10^6 times brentq's
    tolerance of 2e-12, so no rounding on any CPU can flip it)."""
    (v,) = decided(synthetic_claim(np.arange(6) + 10.0, np.arange(6)))
    assert v.ci[1] == 1.0 and 0.5 < v.ci[0] < 0.55
    z, pairs = stats.norm.ppf(0.95), (6 + 6) / 2 - 1

    def outside(theta):
        variance = theta * (1 - theta) * (1 + pairs * (1 - theta) / (2 - theta)) / 36
        variance += theta * (1 - theta) * pairs * theta / (1 + theta) / 36
        return (1.0 - theta) ** 2 - z * z * variance

    bound = (v.ci[0] + 1) / 2
    assert outside(bound - 1e-6) > 0 > outside(bound + 1e-6)


def test_outcomes_no_effect_and_undetermined_and_not_testable():
    # Equivalence: 16 vs 16 from one distribution, smallest effect 0.5: the interval lies inside.
    (same,) = decided(synthetic_claim(SAME, LOW))
    assert same.verdict == NO_EFFECT and -0.5 < same.ci[0] and same.ci[1] < 0.5
    # Few seeds, a moderate shift: neither clears the smallest effect nor lies within it.
    (few,) = decided(synthetic_claim(HIGH[:3] - 5.5, LOW[:3]))
    assert few.verdict == UNDETERMINED and "more seeds would narrow the interval" in few.reason
    # Every run censored (inf): nothing to compare, and no effect is shown.
    (censored,) = decided(synthetic_claim([math.inf] * 5, [math.inf] * 5))
    assert censored.verdict == NOT_TESTABLE and censored.effect != censored.effect
    assert "nothing to compare" in censored.reason

    def nothing_reached(tables, size):
        raise NotTestable("no run reached the threshold")

    claim = Claim(**{**synthetic_claim(HIGH, LOW).__dict__, "measure": nothing_reached})
    (v,) = decided(claim)
    assert (v.verdict, v.reason) == (NOT_TESTABLE, "no run reached the threshold")


def test_a_significant_effect_below_the_smallest_that_counts_is_not_supported():
    tight = LOW / 100  # a spread of 0.01
    (verdict,) = decided(synthetic_claim(tight + 0.5, tight[::-1], WELCH, smallest=1.0))
    assert verdict.p < 0.05  # a shift of 0.5 with a spread of 0.01 is significant ...
    assert verdict.verdict == NO_EFFECT  # ... and its interval excludes the effect that counts


def test_a_claims_outcome_depends_on_its_own_data_only():
    alone = decided(synthetic_claim(HIGH[:6], LOW[:6], claim_id="alone", alpha=0.005))[0]
    others = [synthetic_claim(SAME, LOW, claim_id=f"c{i}") for i in range(5)]
    among = decided(*others, synthetic_claim(HIGH[:6], LOW[:6], claim_id="alone", alpha=0.005))
    assert (among[-1].verdict, among[-1].p, among[-1].ci) == (alone.verdict, alone.p, alone.ci)


def test_power_from_the_u_table_matches_deciding_simulated_data():
    """power() decides each U once; deciding 2,000 simulated data sets through measure_claim's
    own path must agree within Monte Carlo error: 4 standard errors of the difference of the two
    estimates (2,000 and POWER_DRAWS draws)."""
    rule = Rule(MANN_WHITNEY, smallest_effect=0.2, alpha=0.05)
    m = n = 9
    effect = 0.8
    shift = math.sqrt(2) * stats.norm.ppf((effect + 1) / 2)
    rng = np.random.default_rng(5)
    draws = 2000
    outcomes = []
    for _ in range(draws):
        claim = synthetic_claim(rng.normal(shift, 1, m), rng.normal(0, 1, n), smallest=0.2)
        outcomes.append(decided(claim)[0].verdict == SUPPORTED)
    brute, table = np.mean(outcomes), power(rule, m, n, effect)
    error = math.sqrt(brute * (1 - brute) / draws + table * (1 - table) / POWER_DRAWS)
    assert 0.2 < table < 0.95  # a power where the comparison means something
    assert abs(brute - table) < 4 * error


@pytest.mark.parametrize("m, n", [(3, 4), (6, 6), (9, 7)])
def test_the_null_distribution_of_u_gives_scipys_exact_p_values(m, n):
    null = u_null_distribution(m, n)
    assert null.sum() == pytest.approx(1.0, rel=1e-12) and len(null) == m * n + 1
    below = np.arange(n, dtype=float)
    for u in range(m * n + 1):
        above = np.clip(u - n * np.arange(m), 0, n) - 0.75 + 0.5 * np.arange(1, m + 1) / (m + 1)
        expected = stats.mannwhitneyu(above, below, method="exact").pvalue
        tail = min(null[: u + 1].sum(), null[u:].sum())
        assert min(1.0, 2 * tail) == pytest.approx(expected, rel=1e-9)


def test_power_under_no_effect_stays_below_alpha_and_seeds_follow_from_it():
    rule = Rule(MANN_WHITNEY, smallest_effect=0.0, alpha=0.05)
    # Under no effect, power is the null probability of the U values decided supported: exact
    # from U's null distribution, within 4 Monte Carlo standard errors either side; and at most
    # alpha / 2, the test being two-sided.
    exact = u_null_distribution(10, 10)[supported_by_u(rule, 10, 10)].sum()
    error = math.sqrt(exact * (1 - exact) / POWER_DRAWS)
    assert abs(power(rule, 10, 10, 0.0) - exact) < 4 * error
    assert 0.01 < exact <= 0.025
    strict = Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=0.005)
    seeds = seeds_for_power(strict, effect=0.9)
    assert power(strict, seeds, seeds, 0.9) >= 0.8 > power(strict, seeds - 1, seeds - 1, 0.9)
    assert seeds_for_power(strict, effect=0.5, most=12) is None  # the boundary itself: never


def test_the_built_in_claims_share_the_family_alpha():
    built_in = [CLAIMS.get(n) for n in CLAIMS.names() if CLAIMS.provider(n) == "benchmarks"]
    assert len(built_in) == 10
    assert sum(c.rule.alpha for c in built_in) == pytest.approx(FAMILY_ALPHA, rel=1e-12)


def test_rank_biserial_ranks_infinity_as_the_worst_value_and_ties_as_half():
    assert rank_biserial([math.inf, 1.0], [0.5, 2.0]) == pytest.approx(0.5)
    assert rank_biserial([math.inf], [math.inf]) == 0.0
    resampled = rank_biserial(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.5], [2.5]]))
    assert resampled == pytest.approx([-1.0, 1.0])  # one value per resample


def test_a_measure_that_raises_or_returns_nan_is_not_a_verdict():
    def broken(tables, size):
        raise KeyError("w1")

    claim = synthetic_claim(HIGH, LOW)
    raising = Claim(**{**claim.__dict__, "id": "raises", "measure": broken})
    nan = synthetic_claim([1.0, math.nan], LOW, claim_id="nan")
    fine = synthetic_claim(HIGH, LOW, claim_id="fine")
    raised, got_nan, ok = decided(raising, nan, fine)
    assert raised.verdict == ERROR and "KeyError" in raised.reason
    assert got_nan.verdict == NOT_TESTABLE and "NaN" in got_nan.reason
    assert ok.verdict == SUPPORTED


MALFORMED = {
    "an id that is not kebab-case": ({"id": "Not Kebab"}, "invalid claim name 'Not Kebab'"),
    "no statement": ({"statement": " "}, "statement must be a non-empty string"),
    "an unknown test": ({"rule": Rule("t-test", 0.5)}, "whose test is one of mann-whitney"),
    "a negative smallest effect": ({"rule": Rule(WELCH, -1)}, "smallest_effect must be"),
    "an alpha of a half or more": (
        {"rule": Rule(WELCH, 1, alpha=0.5)},
        "rule.alpha must be between 0 and 0.5, got 0.5",
    ),
    "a planned effect below the smallest that matters": (
        {"rule": Rule(MANN_WHITNEY, 0.5, planned_effect=0.4)},
        "rule.planned_effect must be a number above smallest_effect (at most 1 for",
    ),
    "a target power of 1": (
        {"rule": Rule(MANN_WHITNEY, 0.5, target_power=1.0)},
        "rule.target_power must be between 0 and 1, got 1.0",
    ),
    "no experiments": ({"experiments": ()}, "experiments must be a non-empty tuple"),
    "a dataset its experiments lack": (
        {"datasets": ("mnist-5k",)},
        "datasets must be a tuple of its experiments' datasets (8gaussians)",
    ),
    "an experiment that is not a valid suite": (
        {"experiments": (Experiment("bad", {"datasets": {}}, TINY_SUITE),)},
        "experiment bad at size cpu: suite bad: needs at least one [datasets.NAME] table",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_claim_is_refused_at_registration_in_one_line(case):
    change, message = MALFORMED[case]
    claim = Claim(**{**synthetic_claim(HIGH, LOW, claim_id="malformed").__dict__, **change})
    with pytest.raises(gans.RegistryError) as refused:  # a ClaimError, or the name's error
        register_claim(claim)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert "malformed" not in CLAIMS


def test_a_claim_id_is_registered_once():
    with pytest.raises(gans.RegistryError, match="'gan-mode-collapse' is already registered by"):
        register_claim(CLAIMS.get("gan-mode-collapse"))


def test_the_built_in_claims_are_registered_with_both_sizes():
    for name in ("gan-mode-collapse", "adam-breaks-clipping", "critic-loss-tracks-quality"):
        claim = CLAIMS.get(name)
        assert claim.budget("cpu").count("x 5 seeds") == claim.budget("paper").count("x 5 seeds")
        assert "3,000 generator iterations" in claim.budget("cpu")
        assert "100,000 generator iterations" in claim.budget("paper")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "no-such-claim"], "--only: unknown claim no-such-claim; known: "),
        (["--only", ","], "--only: no claim given; known: "),
        (["--size", "huge"], "--size must be one of cpu, paper, got 'huge'"),
        (["--reports", "/dev/null/report"], "--reports: cannot write to /dev/null/report"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert claims.main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    if "known" in message:
        assert "gan-mode-collapse" in err  # the known claims are listed
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    args = ["--plugin", str(PLUGIN), "--only", "tiny-w1,tiny-broken", "--workers", "1"]
    args += ["--out", str(root / "results"), "--reports", str(root / "report")]
    return claims.main(args), root


def test_a_broken_plugin_claim_is_an_error_verdict_and_the_others_are_decided(tiny_report):
    status, root = tiny_report
    assert status == 1  # a measure raised
    readme = (root / "report" / "README.md").read_text()
    table = readme.split("## Verdicts", 1)[1].split("## Setup", 1)[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if " | " in line}
    assert "| error |" in rows["tiny-broken"]
    assert "RuntimeError: this measure is broken" in rows["tiny-broken"]
    verdict = rows["tiny-w1"].split(" | ")[2]
    assert verdict in OUTCOMES
    assert "3 vs 3" in rows["tiny-w1"] and "20 generator iterations x 3 seeds" in rows["tiny-w1"]
    assert (root / "report" / "tiny-w1.png").exists()  # the default figure
    assert "## tiny-w1: " + verdict in readme


def test_a_second_invocation_trains_nothing_and_decides_the_same(tiny_report):
    status, root = tiny_report
    before = (root / "report" / "README.md").read_text().split("## Setup")[0]
    args = ["--plugin", str(PLUGIN), "--only", "tiny-w1,tiny-broken", "--workers", "1"]
    args += ["--out", str(root / "results"), "--reports", str(root / "report")]
    assert claims.main(args) == status
    logs = list((root / "results" / "cpu" / "tiny-claims").glob("*/run.log"))
    assert len(logs) == 6  # one experiment shared by both claims: 2 strategies x 3 seeds
    assert all(log.read_text().count("started on") == 1 for log in logs)
    assert (root / "report" / "README.md").read_text().split("## Setup")[0] == before


def verdict_rows(readme: str) -> dict[str, str]:
    table = readme.split("## Verdicts", 1)[1].split("## Setup", 1)[0]
    return {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if " | " in line}


def test_only_gives_a_claim_the_verdict_of_the_full_run_in_a_report_of_its_own(
    tiny_report, monkeypatch
):
    """The same outcome, effect, interval and p alone as beside another (erroring) claim; and
    --only writes reports/claims-<ids>/, never over the full report."""
    status, root = tiny_report
    monkeypatch.chdir(root)  # the default report directory is relative: reports/claims-tiny-w1
    args = ["--plugin", str(PLUGIN), "--only", "tiny-w1", "--workers", "1"]
    assert claims.main([*args, "--out", str(root / "results")]) == 0
    alone = verdict_rows((root / "reports" / "claims-tiny-w1" / "README.md").read_text())
    among = verdict_rows((root / "report" / "README.md").read_text())
    assert alone["tiny-w1"] == among["tiny-w1"]
    assert not (root / "reports" / "claims").exists()


@needs_chromium
def test_the_claims_report_renders_in_headless_chromium(tiny_report, tmp_path):
    _, root = tiny_report
    assert_renders(root / "report" / "index.html", tmp_path, min_images=1)


def test_every_experiment_is_checked_before_the_first_one_trains(tmp_path, capsys):
    args = ["--plugin", str(PLUGIN), "--only", "tiny-missing-data", "--workers", "1"]
    args += ["--data-root", str(tmp_path / "empty"), "--out", str(tmp_path / "results")]
    assert claims.main([*args, "--reports", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'mnist'") and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists()  # the first experiment did not train


def test_a_size_that_takes_hours_here_needs_accept_hours(tmp_path, capsys):
    args = ["--plugin", str(PLUGIN), "--only", "tiny-long", "--size", "paper", "--workers", "1"]
    args += ["--out", str(tmp_path / "results"), "--reports", str(tmp_path / "report")]
    assert claims.main(args) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"error: --size paper: about [\d.]+ hours of training on cpu for 6 runs still to train "
        r"\(their critic and generator steps, each timed here; evaluation comes on top\): "
        r"give --accept-hours to start; or --size cpu\n",
        err,
    ), err
    hours = float(re.search(r"about ([\d.]+) hours", err)[1])
    assert 1 < hours < 1e7  # 6 runs of 10^9 iterations: hours to years, whatever the machine
    assert not (tmp_path / "results").exists()


def test_only_the_datasets_the_selected_claims_read_are_trained():
    toy = CLAIMS.get("gan-mode-collapse").experiments[0]  # shared with two other claims
    document = toy.document("cpu")
    tracking = CLAIMS.get("critic-loss-tracks-quality")  # reads 8gaussians only of this one
    assert claims.datasets_needed([tracking], toy.name, document) == ["8gaussians"]
    both = [tracking, CLAIMS.get("gan-mode-collapse")]
    assert claims.datasets_needed(both, toy.name, document) == ["8gaussians", "25gaussians"]
