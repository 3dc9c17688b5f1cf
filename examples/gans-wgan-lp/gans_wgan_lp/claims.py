"""A claim about WGAN-LP, checked by `python -m benchmarks.claims` once this package is installed
(entry-point group ``gans.claims`` in pyproject.toml): the example of docs/claims.md."""

from benchmarks.claim import MANN_WHITNEY, Claim, Experiment, Groups, Rule

# Written before any run: a Mann-Whitney test of final W1 per seed, alpha 0.05 (this package's
# only claim: a family of one), a rank-biserial correlation of 0.5 as the smallest effect that
# matters, and seeds planned for 80% power at 0.9 (nine pairs in ten ordered as claimed).
RULE = Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=0.05, planned_effect=0.9, target_power=0.8)


def _suite(width: int, gen_iters: int) -> dict:
    """The suite the claim needs, as a suite file's contents."""
    return {
        # 13 vs 13: the fewest that give RULE 80% power at its planned effect, 0.9
        # (benchmarks.claim.seeds_for_power(RULE, 0.9); tests/test_wgan_lp.py checks it)
        "seeds": list(range(13)),
        "strategies": ["wgan-gp", "wgan-lp"],
        "eval": {"intermediate_samples": 500, "final_samples": 1000},
        "datasets": {
            "8gaussians": {
                "arch": "mlp",
                "width": width,
                "batch_size": 256,
                "gen_iters": gen_iters,
                "eval_every": gen_iters // 5,
            }
        },
    }


LP_AGAINST_GP = Experiment(
    "wgan-lp-against-gp",
    cpu=_suite(width=32, gen_iters=500),  # 26 runs: about a minute on two cores
    paper=_suite(width=512, gen_iters=100_000),  # the WGAN-GP paper's toy setting
)


def final_w1(tables, size):
    """Final W1 per seed of each strategy; a diverged seed counts as the worst value (inf)."""
    runs = tables[LP_AGAINST_GP.name]["runs"]
    runs = runs[runs["status"].isin(["done", "diverged"])]
    w1 = runs["w1"].where(runs["status"] == "done", float("inf"))
    of = {s: w1[runs["strategy"] == s].to_numpy() for s in ("wgan-gp", "wgan-lp")}
    return Groups("wgan-gp", of["wgan-gp"], "wgan-lp", of["wgan-lp"], "final W1 per seed")


CLAIM = Claim(
    id="wgan-lp-beats-gp",
    statement="On toy data, WGAN-GP ends with a higher W1 than WGAN-LP at equal iterations.",
    source="Petzka, Fischer and Lukovnikov 2018, On the regularization of Wasserstein GANs, "
    "Sec. 6 (toy experiments)",
    experiments=(LP_AGAINST_GP,),
    measure=final_w1,
    rule=RULE,
    could_change="The paper's advantage shows most with large penalty weights; at lambda 10 "
    "and a short budget the two penalties may act alike.",
)
