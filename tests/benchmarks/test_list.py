import re
import textwrap

import pytest

import gans
from benchmarks.list import main
from benchmarks.suites import builtin_suites


def test_lists_strategies_with_their_defaults_datasets_and_suites(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name, lr, pieces in [
        ("gan", "lr=0.0002", "loss js"),
        ("wgan", "lr=5e-05", "constraint weight-clipping"),
        ("wgan-gp", "lr=0.0001", "penalty gradient-penalty"),
    ]:
        line = next(line for line in out.splitlines() if line.strip().startswith(f"{name} "))
        assert pieces in line and "(from gans)" in line
        hparams = out.splitlines()[out.splitlines().index(line) + 1]
        assert lr in hparams
    for dataset in gans.DATASETS:
        assert f"  {dataset} " in out
    assert "25gaussians    offline" in out
    assert "cifar10        needs a download" in out
    assert builtin_suites() and all(f"  {suite}  " in out for suite in builtin_suites())
    assert "w1  " in out and "Architectures" in out


def test_a_plugin_strategy_is_listed_with_its_provider(tmp_path, capsys):
    plugin = tmp_path / "listed_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import gans


            class Hinge(gans.Strategy):
                defaults = gans.Hyperparameters(optimizer="rmsprop", lr=3e-05)

                def make_loss(self):
                    return gans.WassersteinLoss()


            gans.register_strategy("listed-hinge", Hinge, provider="listed_plugin.py")
            """
        )
    )
    assert main(["--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    # Column widths follow the longest registered name, which other tests' plugins may set.
    assert re.search(r"listed-hinge +loss wasserstein +\(from listed_plugin.py\)", out), out
    assert "optimizer=rmsprop lr=3e-05 n_critic=1" in out


@pytest.mark.parametrize("plugin", ["missing_plugin.py", "no_such_plugin_module"])
def test_a_bad_plugin_is_one_error_line_and_exit_2(plugin, tmp_path, capsys):
    assert main(["--plugin", str(tmp_path / plugin) if plugin.endswith(".py") else plugin]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: plugin ") and captured.err.count("\n") == 1
