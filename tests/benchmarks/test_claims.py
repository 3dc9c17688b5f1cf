"""Claims: the decision rule on synthetic values with a known effect, the Holm correction, the
registry's refusals, and `python -m benchmarks.claims` end to end on a tiny plugin claim."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from chromium import assert_renders, needs_chromium

import gans
from benchmarks import claims
from benchmarks.claim import (
    CLAIMS,
    CONTRADICTED,
    ERROR,
    INCONCLUSIVE,
    MANN_WHITNEY,
    SUPPORTED,
    WELCH,
    Claim,
    Experiment,
    Groups,
    Rule,
    correct,
    holm,
    measure_claim,
    rank_biserial,
    register_claim,
)

PLUGIN = Path(__file__).parent / "claims_plugin.py"
TINY_SUITE = {
    "seeds": [0],
    "strategies": ["gan"],
    "datasets": {"8gaussians": {"arch": "mlp", "gen_iters": 2}},
}


def synthetic_claim(higher, lower, test=MANN_WHITNEY, smallest=0.5, claim_id="synthetic"):
    groups = Groups("a", np.asarray(higher), "b", np.asarray(lower), "value")
    return Claim(
        id=claim_id,
        statement="a is higher than b.",
        source="synthetic",
        experiments=(Experiment("synthetic", TINY_SUITE, TINY_SUITE),),
        measure=lambda tables, size: groups,
        rule=Rule(test, smallest_effect=smallest),
    )


def decided(*claims_):
    verdicts = [measure_claim(c, {}, "cpu") for c in claims_]
    correct(verdicts)
    return verdicts


RNG = np.random.default_rng(19)
LOW = RNG.normal(0.0, 1.0, 8)
HIGH = RNG.normal(3.0, 1.0, 8)
SAME = RNG.normal(0.0, 1.0, 8)


@pytest.mark.parametrize("test", [MANN_WHITNEY, WELCH])
def test_a_known_effect_is_supported_none_inconclusive_a_reversed_one_contradicted(test):
    smallest = 0.5 if test == MANN_WHITNEY else 1.0
    supported, none, reversed_ = decided(
        synthetic_claim(HIGH, LOW, test, smallest, "s1"),
        synthetic_claim(SAME, LOW, test, smallest, "s2"),
        synthetic_claim(LOW, HIGH, test, smallest, "s3"),
    )
    assert supported.verdict == SUPPORTED and supported.p_holm < 0.05
    assert none.verdict == INCONCLUSIVE and none.p_holm >= 0.05
    assert reversed_.verdict == CONTRADICTED
    assert supported.effect == pytest.approx(-reversed_.effect)
    if test == MANN_WHITNEY:  # eight of eight above: every pair, so +1
        assert supported.effect == pytest.approx(1.0)
    else:
        assert supported.effect == pytest.approx(HIGH.mean() - LOW.mean())
    low, high = supported.ci
    assert low <= supported.effect <= high and low > 0
    assert supported.n == "8 vs 8"


def test_a_significant_effect_below_the_smallest_that_counts_is_inconclusive():
    tight = LOW / 100  # a spread of 0.01
    (verdict,) = decided(synthetic_claim(tight + 0.5, tight[::-1], WELCH, smallest=1.0))
    assert verdict.p_holm < 0.05  # a shift of 0.5 with a spread of 0.01 is significant ...
    assert verdict.verdict == INCONCLUSIVE  # ... but smaller than the effect that counts
    assert "smaller than the smallest that counts" in verdict.reason


def test_holm_matches_a_hand_computation():
    # Sorted: 0.01 x 4 = 0.04; 0.03 x 3 = 0.09; 0.04 x 2 = 0.08 -> 0.09 (monotone); 0.5 x 1 = 0.5.
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.3, math.nan, 0.02]) == pytest.approx([0.3, math.nan, 0.04], nan_ok=True)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_the_correction_runs_across_the_claims_of_a_report():
    one = decided(synthetic_claim(HIGH, LOW, claim_id="alone"))[0]
    among = decided(*(synthetic_claim(HIGH, LOW, claim_id=f"c{i}") for i in range(3)))[0]
    assert among.p == one.p and among.p_holm == pytest.approx(min(1.0, 3 * one.p))


def test_rank_biserial_ranks_infinity_as_the_worst_value_and_ties_as_half():
    assert rank_biserial([math.inf, 1.0], [0.5, 2.0]) == pytest.approx(0.5)
    assert rank_biserial([math.inf], [math.inf]) == 0.0
    resampled = rank_biserial(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[2.5], [2.5]]))
    assert resampled == pytest.approx([-1.0, 1.0])  # one value per bootstrap resample


def test_a_measure_that_raises_or_returns_nan_is_not_a_verdict():
    def broken(tables, size):
        raise KeyError("w1")

    claim = synthetic_claim(HIGH, LOW)
    raising = Claim(**{**claim.__dict__, "id": "raises", "measure": broken})
    nan = synthetic_claim([1.0, math.nan], LOW, claim_id="nan")
    fine = synthetic_claim(HIGH, LOW, claim_id="fine")
    raised, got_nan, ok = decided(raising, nan, fine)
    assert raised.verdict == ERROR and "KeyError" in raised.reason
    assert got_nan.verdict == INCONCLUSIVE and "NaN" in got_nan.reason
    assert ok.verdict == SUPPORTED and ok.p_holm == ok.p  # the untested ones are not counted


MALFORMED = {
    "an id that is not kebab-case": ({"id": "Not Kebab"}, "invalid claim name 'Not Kebab'"),
    "no statement": ({"statement": " "}, "statement must be a non-empty string"),
    "an unknown test": ({"rule": Rule("t-test", 0.5)}, "whose test is one of mann-whitney"),
    "a negative smallest effect": ({"rule": Rule(WELCH, -1)}, "smallest_effect must be"),
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
    assert verdict in (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
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
