import pytest

from gans.registry import Registry, RegistryError
from gans.strategies import STRATEGIES, WGAN, Strategy, register_strategy


@pytest.mark.parametrize("name", ["", "WGAN", "wgan gp", "a/b", "a.b", "-a", "a-", "a--b", "ü"])
def test_malformed_names_are_refused(name):
    with pytest.raises(RegistryError, match="kebab-case"):
        Registry("thing").register(name, object())


def test_duplicates_are_refused_naming_both_providers():
    registry = Registry("thing")
    registry.register("x-1", 1, provider="first-pkg")
    with pytest.raises(RegistryError, match="already registered by first-pkg; second-pkg"):
        registry.register("x-1", 2, provider="second-pkg")
    assert registry.get("x-1") == 1


def test_builtin_strategy_name_cannot_be_taken_again():
    with pytest.raises(RegistryError, match="'wgan' is already registered"):
        register_strategy("wgan", WGAN)


def test_unknown_name_lists_registered_names_and_says_how_plugins_load():
    with pytest.raises(
        RegistryError,
        match=r"unknown loss strategy 'lsgan'; registered: .*gan, .*wgan, wgan-gp.*; "
        r"a plugin's strategies load with --plugin FILE_OR_MODULE .* \(group gans.losses\)$",
    ):
        STRATEGIES.get("lsgan")


def test_lazy_loader_runs_once_on_first_read():
    registry = Registry("thing")
    calls = []
    registry.add_lazy_loader(lambda: calls.append(registry.register("late", 1)))
    assert calls == []
    assert registry.names() == ["late"] and registry.get("late") == 1
    assert len(calls) == 1


def test_strategy_registry_checks_the_class():
    class NoLoss(Strategy):
        defaults = WGAN.defaults

    class NoDefaults(WGAN):
        defaults = None

    with pytest.raises(RegistryError, match="subclass of gans.strategies.Strategy"):
        register_strategy("not-a-class", object)
    with pytest.raises(RegistryError, match="does not implement make_loss"):
        register_strategy("no-loss", NoLoss)
    with pytest.raises(RegistryError, match="must set `defaults`"):
        register_strategy("no-defaults", NoDefaults)
    assert "no-loss" not in STRATEGIES and "no-defaults" not in STRATEGIES


def test_a_piece_without_a_name_is_named_after_its_class_and_a_bad_name_is_refused():
    import gans

    class LSGANLoss(gans.Loss):
        def critic_loss(self, real_scores, fake_scores):
            return ((real_scores - 1) ** 2).mean() + (fake_scores**2).mean()

        def generator_loss(self, fake_scores):
            return ((fake_scores - 1) ** 2).mean()

    class R1Penalty(gans.GradientPenalty):
        pass

    assert (LSGANLoss.name, R1Penalty.name, gans.WeightClipping.name) == (
        "lsgan-loss",
        "r1-penalty",
        "weight-clipping",
    )
    with pytest.raises(RegistryError, match=r"Hinge.name must be kebab-case .*got 'Hinge Loss'"):

        class Hinge(gans.Loss):
            name = "Hinge Loss"
