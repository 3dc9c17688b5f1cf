"""Claims for the tests of benchmarks.claims: a tiny toy experiment (seconds), a claim measured on
it, and one whose measure raises. Loaded with --plugin (once per process: load_plugin caches it)."""

from benchmarks.claim import MANN_WHITNEY, Claim, Experiment, Groups, Rule, register_claim

TINY = {
    "seeds": [0, 1, 2],
    "strategies": ["gan", "wgan-gp"],
    "eval": {"intermediate_samples": 100, "final_samples": 200},
    "datasets": {
        "8gaussians": {
            "arch": "mlp",
            "width": 8,
            "batch_size": 32,
            "gen_iters": 20,
            "eval_every": 10,
        }
    },
}
EXPERIMENT = Experiment("tiny-claims", cpu=TINY, paper=TINY)


def final_w1(tables, size):
    runs = tables[EXPERIMENT.name]["runs"]
    of = {s: runs.loc[runs["strategy"] == s, "w1"].to_numpy() for s in ("gan", "wgan-gp")}
    return Groups("gan", of["gan"], "wgan-gp", of["wgan-gp"], "final W1 per seed")


def broken(tables, size):
    raise RuntimeError("this measure is broken")


register_claim(
    Claim(
        id="tiny-w1",
        statement="On a tiny budget, gan's W1 is higher than wgan-gp's.",
        source="the tests",
        experiments=(EXPERIMENT,),
        measure=final_w1,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
    )
)
register_claim(
    Claim(
        id="tiny-broken",
        statement="A claim whose measure raises.",
        source="the tests",
        experiments=(EXPERIMENT,),
        measure=broken,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
    )
)

# A claim whose second experiment needs a dataset that is not there (run with an empty
# --data-root): the whole claims command is bad input before its first experiment trains.
MISSING_DATA = Experiment(
    "tiny-missing-data",
    cpu={"seeds": [0], "strategies": ["gan"], "datasets": {"mnist": {"arch": "dcgan28"}}},
    paper={"seeds": [0], "strategies": ["gan"], "datasets": {"mnist": {"arch": "dcgan28"}}},
)
register_claim(
    Claim(
        id="tiny-missing-data",
        statement="A claim whose second experiment's dataset is missing.",
        source="the tests",
        experiments=(EXPERIMENT, MISSING_DATA),
        measure=final_w1,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
    )
)

# A claim whose paper size trains for days: refused without --accept-hours.
LONG = {**TINY, "datasets": {"8gaussians": {**TINY["datasets"]["8gaussians"], "gen_iters": 10**9}}}
register_claim(
    Claim(
        id="tiny-long",
        statement="A claim whose paper size would train for days on any machine.",
        source="the tests",
        experiments=(Experiment("tiny-long", cpu=TINY, paper=LONG),),
        measure=final_w1,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
    )
)
