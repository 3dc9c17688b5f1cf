import pytest
import torch

from gans.constraints import WeightClipping
from gans.hyperparameters import ConfigError
from gans.losses import JSLoss, WassersteinLoss
from gans.penalties import GradientPenalty
from gans.strategies import default_hyperparameters, make_strategy


def test_paper_defaults():
    assert default_hyperparameters("gan") == {
        "optimizer": "adam",
        "lr": 2e-4,
        "betas": (0.5, 0.999),
        "n_critic": 1,
        "penalty_weight": None,
        "clip_value": None,
        "generator_loss": "non-saturating",
    }
    assert default_hyperparameters("wgan") == {
        "optimizer": "rmsprop",
        "lr": 5e-5,
        "betas": None,
        "n_critic": 5,
        "penalty_weight": None,
        "clip_value": 0.01,
    }
    assert default_hyperparameters("wgan-gp") == {
        "optimizer": "adam",
        "lr": 1e-4,
        "betas": (0.5, 0.9),
        "n_critic": 5,
        "penalty_weight": 10.0,
        "clip_value": None,
    }


def test_strategies_are_built_from_named_pieces():
    gan, wgan, wgan_gp = (make_strategy(n) for n in ("gan", "wgan", "wgan-gp"))
    assert isinstance(gan.loss, JSLoss) and gan.penalty is None and gan.constraint is None
    assert isinstance(wgan.loss, WassersteinLoss) and isinstance(wgan.constraint, WeightClipping)
    assert wgan.penalty is None and wgan.constraint.clip_value == 0.01
    assert isinstance(wgan_gp.loss, WassersteinLoss) and wgan_gp.constraint is None
    assert isinstance(wgan_gp.penalty, GradientPenalty) and wgan_gp.penalty.weight == 10.0
    assert wgan_gp.pieces() == {
        "loss": "wasserstein",
        "penalty": "gradient-penalty",
        "constraint": None,
    }


def test_overrides_reach_the_pieces():
    strategy = make_strategy("wgan-gp", {"penalty_weight": 0.1, "betas": [0.0, 0.9]})
    assert strategy.penalty.weight == 0.1 and strategy.hparams.betas == (0.0, 0.9)
    assert make_strategy("wgan", {"clip_value": 0.05}).constraint.clip_value == 0.05


def test_wasserstein_loss_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    loss = WassersteinLoss()
    torch.testing.assert_close(loss.critic_loss(real, fake), torch.tensor(-2.5))
    torch.testing.assert_close(loss.generator_loss(fake), torch.tensor(0.5))


def test_js_loss_values_and_forms():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
    ln2 = torch.log(torch.tensor(2.0))
    expected_critic = (ln2 + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2 + (
        ln2 + torch.log1p(torch.exp(torch.tensor(-1.0)))
    ) / 2
    torch.testing.assert_close(JSLoss().critic_loss(real, fake), expected_critic)
    # non-saturating: -log D(G(z)); minimax: log(1 - D(G(z)))
    d = torch.sigmoid(fake)
    torch.testing.assert_close(JSLoss().generator_loss(fake), -torch.log(d).mean())
    torch.testing.assert_close(
        JSLoss(saturating=True).generator_loss(fake), torch.log(1 - d).mean()
    )
    assert isinstance(make_strategy("gan", {"generator_loss": "minimax"}).loss, JSLoss)
    assert make_strategy("gan", {"generator_loss": "minimax"}).loss.saturating


def test_js_loss_stays_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(JSLoss().critic_loss(big, -big))
    assert torch.isfinite(JSLoss().generator_loss(big))


@pytest.mark.parametrize(
    ("strategy", "overrides", "message"),
    [
        ("gan", {"lr": 0}, "lr must be a number > 0, got 0"),
        ("gan", {"lr": -1e-4}, "lr must be a number > 0"),
        ("gan", {"lr": "fast"}, "lr must be a number > 0"),
        ("wgan", {"n_critic": 0}, "n_critic must be an integer >= 1, a piecewise .*, got 0$"),
        ("wgan", {"n_critic": 2.5}, "n_critic must be an integer >= 1"),
        ("wgan", {"n_critic": True}, "n_critic must be an integer >= 1, .*, got True$"),
        ("wgan", {"clip_value": 0}, "clip_value must be a number > 0"),
        ("wgan", {"clip_value": -0.01}, "clip_value must be a number > 0"),
        ("gan", {"optimizer": "sgd"}, "optimizer must be one of adam, rmsprop, got 'sgd'"),
        ("gan", {"betas": (0.5, 1.0)}, r"betas must be two values in \[0, 1\)"),
        ("wgan-gp", {"penalty_weight": -1}, "penalty_weight must be a number >= 0"),
        (
            "gan",
            {"generator_loss": "hinge"},
            "generator_loss must be one of 'non-saturating', 'minimax'",
        ),
        ("wgan-gp", {"lamda": 10}, "unknown hyperparameter lamda; accepted: optimizer, lr, betas"),
    ],
)
def test_invalid_hyperparameters_name_the_field(strategy, overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy(strategy, overrides)


def test_a_declared_custom_hyperparameter_is_validated_on_every_override():
    import dataclasses

    import gans

    @dataclasses.dataclass(frozen=True)
    class R1Hyperparameters(gans.Hyperparameters):
        gamma: float = gans.hyperparameter(10.0, low=0.0)
        warmup: int = gans.hyperparameter(0, low=0, high=1000)

    hp = R1Hyperparameters("adam", 1e-4, (0.5, 0.9))
    assert hp.replace({"gamma": 5}).gamma == 5 and hp.replace({"warmup": 1000}).warmup == 1000
    for overrides, message in (
        ({"gamma": -5.0}, "gamma must be a number >= 0.0, got -5.0"),
        ({"gamma": "ten"}, "gamma must be a number >= 0.0, got 'ten'"),
        ({"gamma": True}, "gamma must be a number >= 0.0, got True"),
        ({"warmup": 2.5}, "warmup must be an integer >= 0 and <= 1000, got 2.5"),
        ({"warmup": 1001}, "warmup must be an integer >= 0 and <= 1000, got 1001"),
    ):
        with pytest.raises(ConfigError, match=f"^{message}$"):
            hp.replace(overrides)
