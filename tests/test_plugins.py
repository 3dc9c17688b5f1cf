import ast
import os
import subprocess
import sys
import textwrap

import pytest

import gans
from gans import STRATEGIES, PluginError, RegistryError, load_plugin, make_strategy

# A complete plugin: least-squares GAN (Mao et al. 2017), reusing nothing but the base classes.
LSGAN_SOURCE = textwrap.dedent(
    """
    import gans


    class LeastSquaresLoss(gans.Loss):
        name = "least-squares"

        def critic_loss(self, real_scores, fake_scores):
            return 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores**2).mean()

        def generator_loss(self, fake_scores):
            return 0.5 * ((fake_scores - 1) ** 2).mean()


    class LSGAN(gans.Strategy):
        defaults = gans.Hyperparameters(optimizer="adam", lr=2e-4, betas=(0.5, 0.999))

        def make_loss(self):
            return LeastSquaresLoss()
    """
)


def test_load_plugin_from_a_file(tmp_path):
    path = tmp_path / "my_lsgan.py"
    path.write_text(
        LSGAN_SOURCE + '\ngans.register_strategy("lsgan-file", LSGAN, provider=__file__)\n'
    )
    assert load_plugin(str(path)) == ["lsgan-file"]
    strategy = make_strategy("lsgan-file", {"lr": 1e-3})
    assert strategy.loss.name == "least-squares" and strategy.hparams.lr == 1e-3


def test_load_plugin_from_a_module_on_the_path(tmp_path, monkeypatch):
    (tmp_path / "lsgan_module.py").write_text(
        LSGAN_SOURCE + '\ngans.register_strategy("lsgan-module", LSGAN)\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugin("lsgan_module") == ["lsgan-module"]
    assert "lsgan-module" in STRATEGIES
    assert STRATEGIES.provider("lsgan-module") == "plugin module lsgan_module"


def test_a_file_plugin_is_credited_to_its_file_in_listings_and_duplicate_errors(tmp_path):
    path = tmp_path / "credited.py"
    path.write_text(LSGAN_SOURCE + '\ngans.register_strategy("lsgan-credited", LSGAN)\n')
    load_plugin(str(path))
    assert STRATEGIES.provider("lsgan-credited") == f"plugin file {path}"
    again = tmp_path / "again.py"
    again.write_text(LSGAN_SOURCE + '\ngans.register_strategy("lsgan-credited", LSGAN)\n')
    with pytest.raises(
        RegistryError,
        match=f"'lsgan-credited' is already registered by plugin file {path}; "
        f"plugin file {again} tries",
    ):
        load_plugin(str(again))


def test_load_plugin_errors_name_the_plugin_and_the_cause(tmp_path):
    with pytest.raises(PluginError, match="plugin file .*missing.py does not exist"):
        load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(
        PluginError, match="plugin no_such_module_xyz failed to import: ModuleNotFound"
    ):
        load_plugin("no_such_module_xyz")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match=r"broken.py failed to import: RuntimeError: boom"):
        load_plugin(str(broken))
    for code in ("0", "'no strategies here'"):
        exits = tmp_path / f"exits_{len(code)}.py"
        exits.write_text(f"import sys\nsys.exit({code})\n")
        with pytest.raises(PluginError, match=rf"exits_\d+\.py called sys\.exit\({code}\) while"):
            load_plugin(str(exits))
    with pytest.raises(PluginError, match="is a directory: give a .py file or an importable"):
        load_plugin(str(tmp_path))
    clash = tmp_path / "clash.py"
    clash.write_text(
        LSGAN_SOURCE + '\ngans.register_strategy("wgan", LSGAN, provider="clash.py")\n'
    )
    with pytest.raises(RegistryError, match="'wgan' is already registered by gans; clash.py tries"):
        load_plugin(str(clash))


def installed_package(tmp_path, entry_point_line, module_source):
    """A package installed the way pip installs one: module plus dist-info with entry points."""
    (tmp_path / "lsgan_pkg.py").write_text(module_source)
    info = tmp_path / "lsgan_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lsgan-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[gans.losses]\n{entry_point_line}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}


def run_python(code, env):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_entry_point_strategies_are_discovered(tmp_path):
    env = installed_package(tmp_path, "lsgan = lsgan_pkg:LSGAN", LSGAN_SOURCE)
    result = run_python(
        "import gans; print(gans.STRATEGIES.names()); print(gans.STRATEGIES.provider('lsgan'))", env
    )
    assert result.returncode == 0, result.stderr
    names, provider = result.stdout.splitlines()
    # Other installed plugins (such as the example package) may be listed too.
    assert {"gan", "lsgan", "wgan", "wgan-gp"} <= set(ast.literal_eval(names))
    assert provider == "package lsgan-pkg (entry point lsgan = lsgan_pkg:LSGAN)"


def test_entry_point_that_fails_to_import_is_reported(tmp_path):
    env = installed_package(
        tmp_path, "lsgan = lsgan_pkg:LSGAN", "import not_installed_dependency\n"
    )
    result = run_python("import gans; gans.STRATEGIES.get('gan')", env)
    assert result.returncode == 1
    assert (
        "PluginError: package lsgan-pkg (entry point lsgan = lsgan_pkg:LSGAN) failed to import: "
        "ModuleNotFoundError: No module named 'not_installed_dependency'"
    ) in result.stderr


class _BrokenLoss(gans.WassersteinLoss):
    def __init__(self, critic=None, generator=None):
        self.critic, self.generator = critic, generator

    def critic_loss(self, real_scores, fake_scores):
        value = super().critic_loss(real_scores, fake_scores)
        return self.critic(real_scores, value) if self.critic else value

    def generator_loss(self, fake_scores):
        value = super().generator_loss(fake_scores)
        return self.generator(fake_scores, value) if self.generator else value


def broken_strategy(name, **loss_options):
    class Broken(gans.Strategy):
        defaults = gans.Hyperparameters(optimizer="adam", lr=1e-4, betas=(0.5, 0.9))

        def make_loss(self):
            return _BrokenLoss(**loss_options)

    gans.register_strategy(name, Broken, provider="test_plugins.py")
    config = gans.TrainConfig(
        strategy=name, dataset="25gaussians", arch="mlp", width=8, batch_size=16, gen_iters=3
    )
    return gans.Trainer(config, progress=False)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "per-sample-critic",
            {"critic": lambda scores, _: scores},
            r"'per-sample-critic': loss.critic_loss returned \(16,\); it must return a scalar",
        ),
        (
            "nan-critic",
            {"critic": lambda _, value: value * float("nan")},
            "'nan-critic': loss.critic_loss returned nan on the untrained networks",
        ),
        (
            "inf-generator",
            {"generator": lambda _, value: value + float("inf")},
            "'inf-generator': loss.generator_loss returned inf on the untrained networks",
        ),
        (
            "float-generator",
            {"generator": lambda _, value: value.detach().item()},
            "'float-generator': loss.generator_loss returned float; it must return a scalar tensor",
        ),
    ],
)
def test_a_broken_loss_is_reported_at_the_first_step(name, options, message):
    trainer = broken_strategy(name, **options)
    with pytest.raises(gans.StrategyError, match=message):
        trainer.train()
    assert trainer.gen_iter == 0
