import dataclasses
import math

import numpy as np
import ot
import pytest
import torch
from tolerances import bf16_tolerance, one_step_tolerance

import gans
from gans import DIVERGED, DONE, RUNNING, ConfigError, RegistryError, TrainConfig, Trainer
from gans.data import Dataset, load_dataset
from gans.models import Architecture
from gans.speedups import FLAT_PARAMETERS, GATED_ACTIVATIONS, GatedLeakyReLU, prepare
from gans.trainer import CRITIC_CURVES, curve_row

TOY = load_dataset("25gaussians")
DIGITS = load_dataset("mnist-5k")


def toy_config(**kw):
    base = dict(
        dataset="25gaussians",
        arch="mlp",
        width=64,
        batch_size=64,
        gen_iters=40,
        heldout_every=5,
        log_every=7,
    )
    return TrainConfig(**{**base, **kw})


def image_config(**kw):
    base = dict(
        dataset="mnist-5k",
        arch="dcgan28",
        width=4,
        batch_size=8,
        gen_iters=6,
        heldout_every=2,
        log_every=4,
    )
    return TrainConfig(**{**base, **kw})


def trainer(config):
    return Trainer(config, data=TOY if config.dataset == "25gaussians" else DIGITS, progress=False)


def without_time(curves):
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in curves]


def assert_same_curves(a, b):
    # NaN marks "not recorded", so compare with NaN == NaN.
    assert len(a) == len(b)
    for ra, rb in zip(without_time(a), without_time(b)):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert ra[k] == rb[k] or (math.isnan(ra[k]) and math.isnan(rb[k])), (k, ra, rb)


def assert_same_weights(t1, t2):
    for m1, m2 in ((t1.generator, t2.generator), (t1.critic, t2.critic)):
        for (name, p1), p2 in zip(m1.state_dict().items(), m2.state_dict().values()):
            torch.testing.assert_close(p1, p2, rtol=0, atol=0, msg=name)


W1_SAMPLES = 500


def w1_to_data(t, seed=123):
    fake = t.generate(W1_SAMPLES, torch.Generator().manual_seed(seed)).double().numpy()
    real = TOY.test[:W1_SAMPLES].double().numpy()
    cost = ot.dist(fake, real, metric="euclidean")
    return ot.emd2(np.full(W1_SAMPLES, 1 / W1_SAMPLES), np.full(W1_SAMPLES, 1 / W1_SAMPLES), cost)


@pytest.mark.parametrize(
    ("strategy", "gen_iters", "overrides"),
    [
        ("gan", 2000, {}),  # one critic step per iteration: cheap, but slower to spread out
        ("wgan", 800, {}),
        ("wgan-gp", 500, {"penalty_weight": 0.1}),  # gan_toy.py: "smaller lambda seems to help"
    ],
    ids=["gan", "wgan", "wgan-gp"],
)
def test_each_strategy_moves_generated_points_toward_the_data(strategy, gen_iters, overrides):
    # Paper toy settings (gan_toy.py: batch 256), smaller nets to keep the test fast.
    t = trainer(
        toy_config(
            strategy=strategy,
            width=64,
            batch_size=256,
            gen_iters=gen_iters,
            log_every=50,
            heldout_every=50,
            hyperparameters=overrides,
        )
    )
    before = w1_to_data(t)
    assert t.train() == DONE
    after = w1_to_data(t)
    # An untrained generator puts every point near the origin, about 1.3 from the data on average;
    # training must close at least half of that gap. 0.05 is below the W1 between two 500-point
    # samples of the data itself, so a lower value would mean the metric is broken.
    assert 1.0 < before < 1.7
    assert 0.05 < after < 0.5 * before, (before, after)


@pytest.mark.parametrize("strategy", ["gan", "wgan", "wgan-gp"])
def test_same_seed_gives_identical_curves_and_weights(strategy):
    a, b = trainer(toy_config(strategy=strategy)), trainer(toy_config(strategy=strategy))
    a.train(), b.train()
    assert_same_curves(a.curves, b.curves)
    assert_same_weights(a, b)
    c = trainer(toy_config(strategy=strategy, seed=1))
    c.train()
    assert [r["critic_loss"] for r in a.curves] != [r["critic_loss"] for r in c.curves]


@pytest.mark.parametrize(
    "config",
    [
        toy_config(strategy="wgan-gp", lr_decay=True),
        image_config(strategy="wgan-gp"),
        image_config(strategy="wgan"),
        toy_config(strategy="gan"),
    ],
    ids=["wgan-gp-toy-lr-decay", "wgan-gp-image", "wgan-image", "gan-toy"],
)
def test_resume_from_checkpoint_is_exact(config, tmp_path):
    whole = trainer(config)
    whole.train()
    first = trainer(config)
    first.train(until=config.gen_iters // 2 + 1)  # also mid-way between two curve copies
    first.save_checkpoint(tmp_path / "ckpt.pt")
    resumed = trainer(config)
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.gen_iter == config.gen_iters // 2 + 1
    assert resumed.train() == DONE
    assert_same_curves(whole.curves, resumed.curves)
    assert_same_weights(whole, resumed)
    assert len(resumed.curves) == config.gen_iters


def test_checkpoint_of_another_config_is_refused(tmp_path):
    t = trainer(toy_config())
    t.train(until=2)
    t.save_checkpoint(tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="different configuration"):
        trainer(toy_config(seed=5)).load_checkpoint(tmp_path / "ckpt.pt")


def test_checkpoint_write_is_atomic(tmp_path):
    t = trainer(toy_config())
    t.train(until=2)
    path = t.save_checkpoint(tmp_path / "ckpt.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    assert torch.load(path, weights_only=True)["gen_iter"] == 2


def test_curves_record_each_generator_iteration():
    t = trainer(toy_config(strategy="wgan-gp", gen_iters=10, heldout_every=5, log_every=3))
    t.train()
    assert [r["gen_iter"] for r in t.curves] == list(range(1, 11))
    assert [r["critic_step"] for r in t.curves] == list(range(5, 55, 5))
    for r in t.curves:
        assert r["w_estimate"] == pytest.approx(-r["critic_loss"], rel=1e-6, abs=1e-7)
        assert r["penalty"] >= 0 and r["grad_norm"] > 0 and math.isnan(r["constraint_active"])
        assert math.isfinite(r["heldout_critic_loss"]) == (r["gen_iter"] % 5 == 0)
    elapsed = [r["elapsed_s"] for r in t.curves]
    assert all(b > a for a, b in zip(elapsed, elapsed[1:]))


def test_gan_records_no_wasserstein_estimate_or_penalty():
    t = trainer(toy_config(strategy="gan", gen_iters=3, log_every=1))
    t.train()
    r = t.curves[-1]
    assert math.isnan(r["w_estimate"]) and math.isnan(r["penalty"]) and math.isnan(r["grad_norm"])
    assert 0 < r["critic_loss"] < 5 and 0 < r["g_loss"] < 5


@pytest.mark.parametrize("make_config", [toy_config, image_config], ids=["mlp", "dcgan28"])
def test_weight_clipping_holds_after_every_critic_step(make_config):
    t = trainer(make_config(strategy="wgan", gen_iters=4, log_every=2))
    max_seen = []

    def record(module, _):
        if torch.is_grad_enabled():  # training forwards, not the no-grad check before training
            max_seen.append(max(p.abs().max().item() for p in module.parameters()))

    t.critic.register_forward_pre_hook(record)
    t.train()
    # The first training forward sees the initial weights; every later one follows a clipped
    # critic step.
    assert max_seen[0] > 0.01
    assert len(max_seen) == 4 * (5 + 1) and max(max_seen[1:]) <= 0.01
    assert all(0 < r["constraint_active"] <= 1 for r in t.curves)


def test_non_finite_loss_stops_the_run_as_diverged():
    # Adam steps are about lr in size, so lr = 1e20 overflows the critic's scores at once.
    t = trainer(
        toy_config(strategy="gan", hyperparameters={"lr": 1e20}, gen_iters=50, log_every=10)
    )
    assert t.train() == DIVERGED
    assert 1 <= t.diverged_at <= 3
    assert len(t.curves) == t.diverged_at
    assert t.curves[-1]["gen_iter"] == t.diverged_at
    assert t.gen_iter == 10  # seen, and stopped, at the first copy of the curves to the host
    last = t.curves[-1]
    assert not all(abs(last[k]) <= 1e6 for k in ("critic_loss", "g_loss"))


def test_a_finite_loss_beyond_the_divergence_limit_is_divergence():
    # Every loss of a trained critic exceeds 1e-9 in magnitude: the first row is already beyond.
    t = trainer(toy_config(strategy="wgan", divergence_limit=1e-9, gen_iters=50, log_every=10))
    assert t.train() == DIVERGED
    assert (t.diverged_at, t.gen_iter, len(t.curves)) == (1, 10, 1)
    assert all(math.isfinite(t.curves[0][k]) for k in ("critic_loss", "g_loss"))
    with pytest.raises(ConfigError, match="divergence_limit must be a finite number > 0"):
        toy_config(divergence_limit=0)


def test_partial_training_reports_running_then_done():
    t = trainer(toy_config(gen_iters=6, log_every=4))
    assert t.train(until=3) == RUNNING and t.gen_iter == 3
    assert t.train(until=100) == DONE and t.gen_iter == 6


def test_lr_decays_linearly_to_zero():
    t = trainer(toy_config(strategy="wgan-gp", gen_iters=10, lr_decay=True))
    t.train(until=5)
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(0.5e-4, rel=1e-9)
    assert t.opt_c.param_groups[0]["lr"] == pytest.approx(0.5e-4, rel=1e-9)
    t.train()
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_sample_grid_is_written(tmp_path):
    from PIL import Image

    t = trainer(image_config())
    path = t.save_samples(tmp_path / "samples" / "grid.png")
    with Image.open(path) as img:
        assert img.size == (8 * 28 + 9 * 2, 8 * 28 + 9 * 2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "strategy",
            "lsgan",
            r"unknown loss strategy 'lsgan'; registered: (.*, )?gan, (.*, )?wgan, wgan-gp",
        ),
        (
            "arch",
            "resnet",
            "unknown architecture 'resnet'; registered: dcgan28, dcgan28-tf, dcgan32, mlp",
        ),
        ("batch_size", 0, "batch_size must be an integer from 1 to 1,000,000, got 0"),
        ("gen_iters", -5, "gen_iters must be an integer from 1 to 1,000,000,000"),
        ("width", 0, "width must be an integer from 1 to 65,536 or unset"),
        ("precision", "fp16", "precision must be one of fp32, bf16, fp64, got 'fp16'"),
    ],
)
def test_invalid_config_names_the_field(field, value, message):
    with pytest.raises((ConfigError, RegistryError), match=message):
        TrainConfig(**{field: value})


def test_unknown_dataset_lists_registered_ones():
    with pytest.raises(RegistryError, match="unknown dataset 'mnist-6k'; registered: .*mnist-5k"):
        Trainer(TrainConfig(dataset="mnist-6k"), progress=False)


def test_architecture_must_fit_the_data():
    with pytest.raises(ValueError, match="cannot model samples of shape \\(2,\\)"):
        trainer(toy_config(arch="dcgan28"))


def test_fixed_noise_samples_are_the_same_every_time_and_bounded():
    t = trainer(toy_config())
    torch.testing.assert_close(t.generate(64), t.generate(64), rtol=0, atol=0)
    with pytest.raises(ValueError, match="fixed noise batch has 64 rows; pass rng"):
        t.generate(65)


def test_compiled_steps_compute_the_eager_gradients():
    config = toy_config(strategy="wgan-gp", width=32)
    eager, compiled = (Trainer(config, data=TOY, progress=False, compile=c) for c in (False, True))
    rows = [t.critic_step() for t in (eager, compiled)]
    assert rows[0].keys() == rows[1].keys() == set(CRITIC_CURVES)
    # One step from the same state, summed in another order: within float32's rounding bound.
    rtol = one_step_tolerance(eager)
    for name in CRITIC_CURVES:
        atol = rtol * rows[0][name].nan_to_num(0.0).abs().max().item()
        torch.testing.assert_close(rows[1][name], rows[0][name], rtol=0, atol=atol, equal_nan=True)
    for t in (eager, compiled):
        t.generator_step()
    # After a step each parameter's .grad holds that step's gradient.
    for module in ("critic", "generator"):
        named = [dict(getattr(t, module).named_parameters()) for t in (eager, compiled)]
        for name, p in named[0].items():
            atol = rtol * p.grad.abs().max().item()
            torch.testing.assert_close(named[1][name].grad, p.grad, rtol=0, atol=atol, msg=name)


def test_bf16_autocast_runs_the_networks_in_bfloat16():
    fp32, bf16 = (trainer(image_config(strategy="wgan-gp", precision=p)) for p in ("fp32", "bf16"))
    rtol, loss_atol = bf16_tolerance(fp32)
    loss, penalty = (
        [t.critic_step()[name] for t in (fp32, bf16)] for name in ("critic_loss", "penalty")
    )
    # Same batch and noise: bfloat16's 8-bit mantissa moves the values a little, not a lot.
    assert loss[0] != loss[1] and penalty[0] != penalty[1]
    torch.testing.assert_close(penalty[1], penalty[0], rtol=rtol, atol=0)
    torch.testing.assert_close(loss[1], loss[0], rtol=0, atol=loss_atol)
    assert bf16.train() == DONE


def test_an_fp64_run_is_its_fp32_run_computed_in_float64():
    fp32, fp64 = (trainer(toy_config(strategy="wgan-gp", precision=p)) for p in ("fp32", "fp64"))
    for net in ("generator", "critic"):
        pairs = zip(getattr(fp32, net).parameters(), getattr(fp64, net).parameters())
        assert all(b.dtype == torch.float64 and torch.equal(a.double(), b) for a, b in pairs)
    rows = [t.critic_step() for t in (fp32, fp64)]
    # The same draws (the streams end alike) and one step of the same computation.
    assert torch.equal(fp32.rng.get_state(), fp64.rng.get_state())
    rtol = one_step_tolerance(fp32)
    for name in ("critic_loss", "penalty", "grad_norm"):
        assert rows[1][name].dtype == torch.float64
        atol = rtol * abs(rows[0][name].item())
        torch.testing.assert_close(rows[1][name].float(), rows[0][name], rtol=0, atol=atol)
    assert fp64.train() == DONE


def test_the_heldout_critic_loss_runs_at_the_training_precision():
    fp32, bf16 = (trainer(image_config(strategy="wgan-gp", precision=p)) for p in ("fp32", "bf16"))
    _, loss_atol = bf16_tolerance(fp32)
    # Same weights and the same evaluation stream: only the precision differs.
    losses = [t.heldout_critic_loss() for t in (fp32, bf16)]
    assert losses[0] != losses[1]
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=loss_atol)


def test_the_trainer_applies_the_speedups_that_fit_the_strategy_and_says_which():
    gan, wgan, wgan_gp = (trainer(image_config(strategy=s)) for s in ("gan", "wgan", "wgan-gp"))
    plain = Trainer(image_config(strategy="wgan-gp"), data=DIGITS, progress=False, speedups=False)
    # Gates only with a penalty (without one they would cost time), flat parameters only with
    # RMSprop (fused Adam rounds a flat tensor differently, gans/speedups.py).
    assert gan.speedups == []
    assert wgan.speedups == [FLAT_PARAMETERS]
    assert wgan_gp.speedups == [GATED_ACTIVATIONS]
    assert plain.speedups == []

    def layers(t):
        return {type(m) for m in t.critic.modules()}

    assert GatedLeakyReLU in layers(wgan_gp) and GatedLeakyReLU not in layers(gan)
    assert GatedLeakyReLU not in layers(plain) and torch.nn.LeakyReLU in layers(plain)
    # Without the speedups each parameter is its own tensor, as gans.models made it.
    assert len(plain.opt_c.param_groups[0]["params"]) == len(list(plain.critic.parameters()))
    assert len(wgan.opt_c.param_groups[0]["params"]) == 1


@pytest.mark.parametrize("strategy", ["gan", "wgan", "wgan-gp"])
@pytest.mark.parametrize("make_config", [toy_config, image_config], ids=["mlp", "dcgan28"])
def test_the_speedups_change_no_number(make_config, strategy):
    config = make_config(strategy=strategy, gen_iters=5, log_every=2, heldout_every=2)
    data = TOY if config.dataset == "25gaussians" else DIGITS
    fast, plain = (Trainer(config, data=data, progress=False, speedups=on) for on in (True, False))
    assert not plain.speedups  # and gan has none: its optimizer is Adam and it has no penalty
    assert fast.train() == plain.train() == DONE
    assert_same_curves(fast.curves, plain.curves)  # bit for bit, NaN where not recorded
    assert_same_weights(fast, plain)


def test_a_checkpoint_resumes_only_with_the_speedups_it_was_written_with(tmp_path):
    config = toy_config(strategy="wgan", gen_iters=4)
    t = trainer(config)
    t.train(until=2)
    t.save_checkpoint(tmp_path / "state.pt")
    plain = Trainer(config, data=TOY, progress=False, speedups=False)
    with pytest.raises(ValueError, match="same speedups setting"):
        plain.load_checkpoint(tmp_path / "state.pt")


class _HalveLargest(gans.Constraint):
    """A plugin constraint that works layer by layer: it needs each layer's own tensor."""

    name = "halve-largest"

    def __init__(self):
        self.shapes = []

    def __call__(self, parameters):
        self.shapes = [tuple(p.shape) for p in parameters]
        largest = max(parameters, key=lambda p: p.abs().max())
        largest.mul_(0.5)
        return torch.tensor(1 / len(parameters))


class _Replacing(gans.Constraint):
    name = "replacing"

    def __init__(self, critic_of):
        self.critic_of = critic_of

    def __call__(self, parameters):
        first = next(m for m in self.critic_of().modules() if isinstance(m, torch.nn.Linear))
        first.weight = torch.nn.Parameter(first.weight.detach().clamp(-0.01, 0.01))
        return torch.tensor(0.0)


def _with_constraint(constraint, speedups=True):
    t = Trainer(
        toy_config(strategy="wgan", gen_iters=2), data=TOY, progress=False, speedups=speedups
    )
    t.strategy.constraint = constraint
    return t


def test_a_plugin_constraint_gets_each_layers_parameters_and_changes_them_in_place():
    fast, plain = (_with_constraint(_HalveLargest(), speedups=on) for on in (True, False))
    for t in (fast, plain):
        assert t.train() == DONE
    shapes = [tuple(p.shape) for p in plain.critic.parameters()]
    assert fast.strategy.constraint.shapes == shapes  # layers, not the one flat tensor
    assert_same_weights(fast, plain)  # its in-place changes reached the flat tensor


def test_a_constraint_that_replaces_a_parameter_is_an_error_not_a_frozen_layer():
    holder = {}
    t = _with_constraint(_Replacing(lambda: holder["t"].critic))
    holder["t"] = t
    with pytest.raises(RuntimeError, match="replaced by a new tensor.*in place"):
        t.critic_step()


class _LazyCritic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.LazyLinear(16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
        )

    def forward(self, x):
        return self.net(x)


def _lazy_models(config):
    generator = torch.nn.Sequential(
        torch.nn.LazyLinear(16), torch.nn.ReLU(), torch.nn.Linear(16, config.sample_shape[0])
    )
    return generator, _LazyCritic()


@pytest.fixture(scope="module")
def lazy_architecture():
    return gans.register_architecture(
        "test-lazy-mlp",
        Architecture(
            build=_lazy_models,
            default_width=16,
            default_latent_dim=2,
            accepts=lambda shape: len(shape) == 1,
            description="lazy layers",
        ),
        provider="tests",
    )


@pytest.mark.parametrize(
    ("strategy", "speedups"), [("wgan", [FLAT_PARAMETERS]), ("wgan-gp", [GATED_ACTIVATIONS])]
)
def test_an_architecture_with_lazy_layers_trains_with_and_without_the_speedups(
    strategy, speedups, lazy_architecture
):
    config = toy_config(strategy=strategy, arch="test-lazy-mlp", gen_iters=3)
    fast, plain = (Trainer(config, data=TOY, progress=False, speedups=on) for on in (True, False))
    assert fast.speedups == speedups  # applied once the first call made the layers
    assert fast.train() == plain.train() == DONE
    assert_same_weights(fast, plain)


def test_parameters_that_cannot_be_flattened_train_one_by_one_with_a_note(caplog):
    generator = torch.nn.Linear(2, 2)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 1).double())
    with caplog.at_level("INFO", logger="gans.speedups"):
        prepared = prepare(
            generator, critic, torch.device("cpu"), penalty=False, optimizer="rmsprop"
        )
    assert prepared.applied == [f"{FLAT_PARAMETERS} (generator only)"]
    assert prepared.critic_parameters.optimized == list(critic.parameters())
    (note,) = [r.getMessage() for r in caplog.records]
    assert note.startswith("critic trains per parameter, not flattened: ") and "dtype" in note


@pytest.mark.parametrize(
    ("make_config", "strategy"),
    [(toy_config, "wgan-gp"), (image_config, "wgan"), (image_config, "gan")],
)
def test_the_critic_steps_of_an_iteration_share_one_generator_call(make_config, strategy):
    t = trainer(make_config(strategy=strategy))
    batches = []
    t.generator.register_forward_hook(lambda module, args, out: batches.append(len(out)))
    t.train(until=1)
    batches = batches[-2:]  # before them, check_strategy's call on at most 16 samples
    # One call for the n_critic critic steps, one for the generator step.
    assert batches == [t.config.batch_size * t.hparams.n_critic, t.config.batch_size]


def test_a_generator_with_batch_norm_is_called_once_per_critic_step():
    # Its batch statistics would change with a batch five times larger.
    images = torch.rand(40, 3, 32, 32) * 2 - 1
    data = Dataset("random-32", "image", images[:32], images[32:])
    config = TrainConfig(
        strategy="wgan", dataset="random-32", arch="dcgan32", width=4, batch_size=4, gen_iters=1
    )
    t = Trainer(config, data=data, progress=False)
    batches = []
    t.generator.register_forward_hook(lambda module, args, out: batches.append(len(out)))
    t.train()
    assert batches[-6:] == [4] * 6


def test_curve_values_must_be_exactly_the_named_columns():
    values = {"g_loss": torch.tensor(1.0), "heldout_critic_loss": torch.tensor(2.0)}
    assert curve_row(values, ("heldout_critic_loss", "g_loss")).tolist() == [2.0, 1.0]
    with pytest.raises(KeyError, match=r"missing \['heldout_critic_loss'\], not columns \['lr'\]"):
        curve_row(
            {"g_loss": torch.tensor(1.0), "lr": torch.tensor(0.1)},
            ("g_loss", "heldout_critic_loss"),
        )


@pytest.mark.parametrize("strategy", ["wgan", "wgan-gp"])
def test_per_layer_gradient_norms_match_a_hand_computation(strategy):
    """critic(x) = w2 . relu(W1 x + b1) + b2 and the Wasserstein critic loss
    mean D(fake) - mean D(real): dL/dw2 = mean_fake relu(h) - mean_real relu(h), and
    dL/dW1 = mean_fake (w2 * [h > 0]) x^T - mean_real (the same); the penalty is left out."""
    config = TrainConfig(
        strategy=strategy, dataset="8gaussians", arch="mlp", width=3, depth=1, batch_size=6
    )
    trainer = Trainer(config, progress=False)
    first, second = (m for m in trainer.critic.modules() if isinstance(m, torch.nn.Linear))
    W1, b1 = first.weight.detach().double().clone(), first.bias.detach().double().clone()
    w2 = second.weight.detach().double().clone()[0]
    draws = torch.Generator().set_state(trainer.rng.get_state())
    real = trainer.data.batch(6, draws).double()  # the batch the step will draw
    fake = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))

    def grads(x):
        h = x @ W1.T + b1
        return (w2 * (h > 0)).T @ x / len(x), torch.relu(h).mean(0)

    (g1_fake, g2_fake), (g1_real, g2_real) = grads(fake.double()), grads(real)
    expected = [(g1_fake - g1_real).norm().item(), (g2_fake - g2_real).norm().item()]
    got = trainer.critic_step(fake, layer_grads=True)["layer_grad_norms"]
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    assert trainer.layer_columns == ("critic_grad_norm_layer_1", "critic_grad_norm_layer_2")


def test_per_layer_gradient_norms_are_recorded_every_k_iterations_without_changing_training():
    config = TrainConfig(
        strategy="wgan-gp", dataset="8gaussians", arch="mlp", width=8, batch_size=16, gen_iters=6
    )
    every_2, rarely = (
        Trainer(dataclasses.replace(config, layer_grads_every=k), progress=False)
        for k in (2, 10**6)
    )
    for trainer in (every_2, rarely):
        trainer.train()
    columns = [f"critic_grad_norm_layer_{i}" for i in (1, 2, 3, 4)]  # depth 3: four layers
    for row in every_2.curves:
        recorded = [row[c] for c in columns]
        if row["gen_iter"] % 2 == 0:
            assert all(math.isfinite(v) and v > 0 for v in recorded), row
        else:
            assert all(math.isnan(v) for v in recorded), row
    assert all(math.isnan(row[c]) for row in rarely.curves for c in columns)
    # The extra backward pass changes nothing else: the curves are the same to the bit.
    for a, b in zip(every_2.curves, rarely.curves, strict=True):
        assert [a[k] for k in gans.CURVE_COLUMNS] == pytest.approx(
            [b[k] for k in gans.CURVE_COLUMNS], rel=0, abs=0, nan_ok=True
        )


def test_a_frozen_generator_keeps_its_weights_and_its_evaluation_scores_the_critic():
    config = TrainConfig(
        strategy="wgan",
        dataset="8gaussians",
        arch="mlp",
        width=8,
        batch_size=16,
        gen_iters=5,
        freeze_generator=True,
    )
    trainer = Trainer(config, progress=False)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]
    assert trainer.train() == DONE
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters()))
    assert all(math.isfinite(row["g_loss"]) for row in trainer.curves)
    rows = {row.metric: row.value for row in gans.evaluate(trainer, 200)}
    assert rows["critic_lipschitz"] > 0
    assert -1.0 < rows["critic_w1_fraction"] < 1.5  # a lower bound on W1, up to the estimate of L
    moving = Trainer(dataclasses.replace(config, freeze_generator=False), progress=False)
    assert "critic_w1_fraction" not in {row.metric for row in gans.evaluate(moving, 200)}
    with pytest.raises(ConfigError, match="freeze_generator must be true or false, got 'yes'"):
        TrainConfig(freeze_generator="yes")


@pytest.mark.parametrize(
    ("critic_norm", "calls"),
    [
        ("none", gans.trainer.JOINT_CALL),
        ("layer", gans.trainer.JOINT_CALL),
        ("batch", gans.trainer.SEPARATE_CALLS),
    ],
)
def test_the_critic_sees_real_and_fake_apart_only_with_batch_norm(critic_norm, calls):
    t = trainer(image_config(strategy="wgan-gp", critic_norm=critic_norm))
    assert t.critic_calls == calls
    batches = []
    t.critic.register_forward_hook(lambda module, args, out: batches.append(len(out)))
    real = t.data.batch(8, torch.Generator().manual_seed(1))
    fake = t._generated(8)
    loss, *_ = t._critic_objective(real, fake)
    # The critic loss from the batch(es) it was given, then the penalty's interpolates.
    assert batches == ([16] if calls == gans.trainer.JOINT_CALL else [8, 8]) + [8]
    if critic_norm == "batch":  # with shared statistics the loss would be another number
        t.critic.train()
        joint = t._scores(torch.cat([real, fake])).split(8)
        assert not torch.allclose(t.strategy.loss.critic_loss(*joint), loss, atol=1e-5)


def test_resume_mid_way_through_an_epoch_schedule_is_exact(tmp_path):
    # 256 toy points at batch 64: 4 critic batches an epoch; 2 per iteration in epoch 0 (2
    # iterations), then 1 (4 iterations an epoch): 2 + 4 = 6 iterations in 2 epochs.
    data = dataclasses.replace(TOY, train=TOY.train[:256])
    schedule = {"n_critic": {"unit": "epoch", "steps": [[0, 2], [1, 1]]}}
    config = toy_config(gen_iters=None, epochs=2, lr_decay=True, hyperparameters=schedule)

    def make():
        return Trainer(config, data=data, progress=False)

    whole = make()
    assert whole.gen_iters == 6
    whole.train()
    first = make()
    first.train(until=3)  # the first iteration of epoch 1
    first.save_checkpoint(tmp_path / "ckpt.pt")
    resumed = make()
    resumed.load_checkpoint(tmp_path / "ckpt.pt")
    assert resumed.train() == DONE
    assert_same_curves(whole.curves, resumed.curves)
    assert_same_weights(whole, resumed)
    assert [row["critic_step"] for row in resumed.curves] == [2, 4, 5, 6, 7, 8]
