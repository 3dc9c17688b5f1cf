"""A claim about WGAN-LP, checked by `python -m benchmarks.claims` once this package is installed
(entry-point group ``gans.claims`` in pyproject.toml): the example of docs/claims.md."""

from benchmarks.claim import MANN_WHITNEY, Claim, Experiment, Groups, Rule


def _suite(width: int, gen_iters: int) -> dict:
    """The suite the claim needs, as a suite file's contents."""
    return {
        "seeds": [0, 1, 2, 3, 4],  # 5 vs 5: the fewest with which a rank test can reach p < 0.05
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
    cpu=_suite(width=32, gen_iters=500),  # about a minute on two cores
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
    rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
    could_change="The paper's advantage shows most with large penalty weights; at lambda 10 "
    "and a short budget the two penalties may act alike.",
)
