import math

import ot
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gans.data import load_dataset, mixture_modes
from gans.metrics import HIGH_QUALITY, MODES_COVERED, W1
from gans.metrics_toy import (
    critic_fit,
    critic_surface,
    data_square,
    evaluate_points,
    mode_metrics,
    wasserstein1,
)

# P(|x| <= 3 std) for an isotropic 2-D Gaussian: |x| / std follows a chi distribution with 2
# degrees of freedom, whose CDF is 1 - exp(-r^2 / 2).
IN_3_STD = 1 - math.exp(-4.5)


@pytest.fixture(scope="module")
def mixtures():
    return {name: load_dataset(name) for name in ("8gaussians", "25gaussians")}


def w1(fake, real):
    return wasserstein1(torch.tensor(fake), torch.tensor(real))


def test_w1_of_hand_computed_matching():
    # Each point moves straight up by 1; crossing matchings cost sqrt(2) each, so 1.0 is optimal.
    assert w1([[0.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]) == pytest.approx(1.0, abs=1e-12)


def test_w1_of_a_shift_is_the_shift_length():
    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shift = torch.tensor([3.0, -4.0], dtype=torch.float64)
    assert wasserstein1(points + shift, points) == pytest.approx(5.0, abs=1e-9)


def test_w1_of_a_permuted_copy_is_zero():
    points = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    permuted = points[torch.randperm(300, generator=torch.Generator().manual_seed(2))]
    assert wasserstein1(permuted, points) == pytest.approx(0.0, abs=1e-9)
    assert wasserstein1(points, points) == pytest.approx(0.0, abs=1e-9)


def test_w1_refuses_unequal_sizes():
    with pytest.raises(ValueError, match="3 fake, 4 real"):
        wasserstein1(torch.zeros(3, 2), torch.zeros(4, 2))


@pytest.mark.filterwarnings("ignore:numItermax reached")
def test_w1_refuses_a_solver_stopped_before_the_optimum(monkeypatch):
    monkeypatch.setattr("gans.metrics_toy.EMD_MAX_ITER", 10)
    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(6))
    with pytest.raises(RuntimeError, match="did not converge on 200 points"):
        wasserstein1(points, points.flip(0) + 1.0)


def test_w1_between_two_samples_of_the_same_mixture_is_small(mixtures):
    data = mixtures["25gaussians"]
    # The splits come from fixed seeds, so the value is deterministic: 0.0677 when measured. The
    # band allows a different but still exact solver path while staying far below the W1 to the
    # origin (about 1.0), and far below the spacing between modes (0.707).
    assert 0.05 <= wasserstein1(data.train[:2000], data.test[:2000]) <= 0.09


def test_w1_to_a_single_point_is_the_mean_distance_to_it(mixtures):
    # Every plan to a set of identical points costs the same: the mean distance to that point.
    real = mixtures["25gaussians"].test[:2000]
    expected = float(real.double().norm(dim=1).mean())
    assert wasserstein1(torch.zeros_like(real), real) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_samples_of_the_true_mixture_cover_every_mode(mixtures, name):
    centres, std = mixture_modes(name)
    result = mode_metrics(mixtures[name].test, centres, std)
    assert result["modes_covered"] == result["n_modes"] == len(centres)
    assert sum(result["mode_counts"]) == round(result["high_quality_fraction"] * 10_000)
    # 10,000 samples: the binomial standard error is sqrt(p(1-p)/n) = 0.001; allow 4 of them.
    assert result["high_quality_fraction"] == pytest.approx(IN_3_STD, abs=0.004)


def test_one_gaussian_covers_exactly_one_mode():
    centres, std = mixture_modes("25gaussians")
    points = centres[7] + std * torch.randn(2000, 2, generator=torch.Generator().manual_seed(3))
    result = mode_metrics(points, centres, std)
    assert result["modes_covered"] == 1
    assert result["mode_counts"][7] == sum(result["mode_counts"])


def test_points_far_from_every_mode_cover_nothing():
    centres, std = mixture_modes("8gaussians")
    result = mode_metrics(torch.full((500, 2), 10.0), centres, std)
    assert result["modes_covered"] == 0
    assert result["high_quality_fraction"] == 0.0


def test_min_share_decides_coverage():
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # 99 samples on mode 0 and one on mode 1: mode 1 has 1% of the samples.
    points = torch.cat([torch.zeros(99, 2), torch.tensor([[1.0, 0.0]])])
    assert mode_metrics(points, centres, std=0.01)["modes_covered"] == 1  # default: 1/8 needed
    assert mode_metrics(points, centres, std=0.01, min_share=0.0)["modes_covered"] == 2
    assert mode_metrics(points, centres, std=0.01, min_share=0.01)["modes_covered"] == 2
    assert mode_metrics(points, centres, std=0.01, min_share=0.02)["modes_covered"] == 1


def test_critic_surface_of_a_linear_critic():
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, -3.0]]))
        critic.bias.fill_(0.5)
    xs, ys, values = critic_surface(critic, -1.0, 2.0, steps=7)
    assert xs.shape == ys.shape == (7,)
    assert values.shape == (7, 7)
    assert_close(xs, torch.linspace(-1.0, 2.0, 7))
    assert_close(ys, torch.linspace(-1.0, 2.0, 7))
    # Rows follow y, columns follow x.
    assert_close(values, 2.0 * xs[None, :] - 3.0 * ys[:, None] + 0.5)
    assert_close(values[0, -1], torch.tensor(2.0 * 2.0 + 3.0 + 0.5))


def test_data_square_adds_a_tenth_of_the_span():
    lo, hi = data_square(torch.tensor([[0.0, -1.0], [3.0, 1.0]]))
    assert (lo, hi) == pytest.approx((-1.4, 3.4), abs=1e-6)


def test_evaluate_points_of_a_mixture(mixtures):
    real = mixtures["8gaussians"].test[:500]
    rows = evaluate_points(mixtures["8gaussians"].train[:500], real, "8gaussians", eval_seed=4)
    assert [row.metric for row in rows] == [W1, MODES_COVERED, HIGH_QUALITY]
    w1_row, modes_row, quality_row = rows
    assert (w1_row.feature_extractor, w1_row.n_real, w1_row.n_fake) == ("points", 500, 500)
    assert (w1_row.real_split, w1_row.eval_seed) == ("test", 4)
    assert w1_row.library == f"POT {ot.__version__}"
    assert modes_row.value == 8.0
    assert quality_row.value == pytest.approx(IN_3_STD, abs=0.02)
    assert {row.library for row in rows[1:]} == {"gans"}
    assert all(row.unavailable is None for row in rows)


def test_evaluate_points_of_other_datasets_gives_w1_only():
    points = torch.randn(50, 2, generator=torch.Generator().manual_seed(5))
    rows = evaluate_points(points, points, "swissroll", eval_seed=0)
    assert [(row.metric, row.value) for row in rows] == [(W1, pytest.approx(0.0, abs=1e-9))]


def test_evaluate_dispatches_toy_trainers_to_exact_metrics():
    import gans

    config = gans.TrainConfig(
        strategy="wgan-gp", dataset="25gaussians", arch="mlp", width=16, gen_iters=2
    )
    trainer = gans.Trainer(config, progress=False)
    rows = gans.evaluate(trainer, n_fake=500, eval_seed=3)
    assert [r.metric for r in rows] == [W1, MODES_COVERED, HIGH_QUALITY]
    assert all(r.eval_seed == 3 and r.n_fake == 500 for r in rows)
    # An untrained generator sits near the origin, about 1.3 from the data (see test_trainer).
    assert 1.0 < rows[0].value < 1.7


@pytest.mark.parametrize(("direction", "expected"), [((0.6, 0.8), 1.0), ((-0.8, 0.6), 0.0)])
def test_critic_fit_of_a_linear_critic_matches_a_hand_computation(direction, expected):
    """Fake points are the real ones shifted by d, so W1 = |d|. A linear critic f(x) = w.x has
    Lipschitz constant |w| and estimate w.(mean real - mean fake) = -w.d: along -d it is optimal
    (fraction 1), across d it sees nothing (fraction 0)."""
    real = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    shift = torch.tensor([0.6, 0.8]) * 0.5  # |d| = 0.5
    fake = real + shift
    critic = torch.nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(-3.0 * torch.tensor([direction]))  # |w| = 3
    w1 = wasserstein1(fake, real)
    assert w1 == pytest.approx(0.5, rel=1e-4)
    lipschitz, fraction = critic_fit(critic, fake, real, w1, eval_seed=0)
    assert lipschitz.metric == "critic_lipschitz" and lipschitz.value == pytest.approx(3.0)
    assert fraction.metric == "critic_w1_fraction"
    assert fraction.value == pytest.approx(expected, abs=1e-4)
