import math

import pytest
import torch
from gans_wgan_lp import WGANLP, LipschitzPenalty
from torch import nn

import gans


def linear_critic(weight):
    critic = nn.Linear(len(weight), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([weight]))
    return critic


@pytest.mark.parametrize(
    ("weight", "expected"),
    [([0.6, 0.8], 0.0), ([1.2, 1.6], 10.0 * (2.0 - 1.0) ** 2), ([0.3, 0.4], 0.0)],
    ids=["norm-1", "norm-2", "norm-0.5"],
)
def test_penalty_is_one_sided(weight, expected):
    # A linear critic has the same gradient w everywhere: penalty = lambda * max(0, |w| - 1)^2.
    out = LipschitzPenalty(10.0)(
        linear_critic(weight), torch.randn(8, 2), torch.randn(8, 2), torch.Generator()
    )
    torch.testing.assert_close(out.value, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.grad_norm, torch.tensor(weight).norm(), rtol=1e-5, atol=1e-6)


def test_found_through_its_entry_point():
    assert gans.STRATEGIES.get("wgan-lp") is WGANLP
    assert "gans-wgan-lp" in gans.STRATEGIES.provider("wgan-lp")
    assert gans.make_strategy("wgan-lp").pieces() == {
        "loss": "wasserstein",
        "penalty": "lipschitz-penalty",
        "constraint": None,
    }


def test_trains_on_toy_data():
    config = gans.TrainConfig(
        strategy="wgan-lp", dataset="25gaussians", arch="mlp", width=16, batch_size=64, gen_iters=20
    )
    trainer = gans.Trainer(config, progress=False)
    assert trainer.train() == gans.DONE
    assert len(trainer.curves) == 20
    assert all(row["penalty"] >= 0 and math.isfinite(row["penalty"]) for row in trainer.curves)
    assert all(math.isfinite(row["critic_loss"] + row["g_loss"]) for row in trainer.curves)


def test_the_claim_is_found_through_its_entry_point():
    from benchmarks.claim import CLAIMS

    assert "wgan-lp-beats-gp" in CLAIMS
    assert CLAIMS.provider("wgan-lp-beats-gp").startswith("package gans-wgan-lp")
    budget = CLAIMS.get("wgan-lp-beats-gp").budget("cpu")
    assert budget == "8gaussians: 500 generator iterations x 13 seeds"


def test_the_claims_seeds_come_from_its_power_calculation():
    from gans_wgan_lp.claims import LP_AGAINST_GP, RULE

    from benchmarks.claim import seeds_for_power

    seeds = seeds_for_power(RULE, RULE.planned_effect, RULE.target_power)
    assert len(LP_AGAINST_GP.document("cpu")["seeds"]) == seeds == 13


def test_its_runs_train_stacked_as_they_train_alone():
    def config(seed):
        return gans.TrainConfig(
            strategy="wgan-lp",
            dataset="25gaussians",
            arch="mlp",
            width=16,
            batch_size=64,
            gen_iters=10,
            seed=seed,
        )

    alone = [gans.Trainer(config(seed), progress=False) for seed in (0, 1)]
    for trainer in alone:
        trainer.train()
    stacked = [gans.Trainer(config(seed), progress=False) for seed in (0, 1)]
    assert gans.stacking_obstacle(stacked[0]) is None
    assert gans.StackedTrainer(stacked, progress=False).train() == [gans.DONE, gans.DONE]
    for mine, theirs in zip(stacked, alone):
        for column in ("critic_loss", "penalty", "g_loss"):
            torch.testing.assert_close(
                torch.tensor([row[column] for row in mine.curves]),
                torch.tensor([row[column] for row in theirs.curves]),
                rtol=1e-4,
                atol=1e-5,
            )
