import json

import pytest
import torch

from benchmarks.speed import main, measure

W, B = 8, 16  # mlp width and batch: small enough to count FLOPs by hand


def linear_flops(batch, layers):
    """2 * batch * in * out per Linear layer: one pass of its matmul."""
    return sum(2 * batch * n_in * n_out for n_in, n_out in layers)


# gan_toy.py's nets at width W: 2-d noise -> 2-d points, 2-d points -> 1 score.
G = [(2, W), (W, W), (W, W), (W, 2)]
D = [(2, W), (W, W), (W, W), (W, 1)]
# One critic step: G forward (no grad), D forward on real + fake, D backward for weight grads and
# for input grads of every layer but the first (the data need none).
CRITIC_STEP = linear_flops(B, G) + linear_flops(2 * B, D) * 2 + linear_flops(2 * B, D[1:])
# One generator step: G and D forward; D backward for input grads only (its weights are frozen);
# G backward for weight grads and for input grads of every layer but the first (noise).
GENERATOR_STEP = linear_flops(B, G) * 2 + linear_flops(B, D) * 2 + linear_flops(B, G[1:])


@pytest.mark.parametrize(("strategy", "n_critic"), [("gan", 1), ("wgan", 5)])
def test_flops_per_generator_iteration_match_a_hand_count(strategy, n_critic):
    result = measure(
        strategy, "mlp", W, B, iters=2, warmup=1, dataset="25gaussians", device=torch.device("cpu")
    )
    assert result["flops_per_gen_iter"] == n_critic * CRITIC_STEP + GENERATOR_STEP
    assert result["critic_steps_per_s"] == pytest.approx(n_critic * result["gen_iters_per_s"])
    assert result["achieved_gflops"] == pytest.approx(
        result["flops_per_gen_iter"] * result["gen_iters_per_s"] / 1e9
    )


def test_the_gradient_penalty_double_backward_is_counted():
    cpu = torch.device("cpu")
    wgan = measure("wgan", "mlp", W, B, 1, 1, "25gaussians", cpu)["flops_per_gen_iter"]
    wgan_gp = measure("wgan-gp", "mlp", W, B, 1, 1, "25gaussians", cpu)["flops_per_gen_iter"]
    # Per critic step the penalty adds a critic forward and a backward on the interpolates and the
    # backward of that backward: between one and three more critic passes' worth.
    extra_per_step = (wgan_gp - wgan) / 5
    assert linear_flops(B, D) * 2 < extra_per_step < linear_flops(B, D) * 8


def test_json_output_has_every_field(capsys):
    assert (
        main(
            [
                "--strategy",
                "gan",
                "--arch",
                "dcgan28",
                "--width",
                "4",
                "--batch",
                "8",
                "--iters",
                "2",
                "--threads",
                "1",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {
        "strategy",
        "arch",
        "width",
        "batch",
        "threads",
        "device",
        "gen_iters_per_s",
        "critic_steps_per_s",
        "flops_per_gen_iter",
        "achieved_gflops",
        "gemm_gflops",
    }
    assert (result["threads"], result["width"], result["batch"]) == (1, 4, 8)
    assert result["gen_iters_per_s"] > 0 and result["gemm_gflops"] > 0


def test_bad_input_is_one_line(capsys):
    assert main(["--strategy", "nope", "--iters", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown loss strategy 'nope'")
    assert main(["--strategy", "gan", "--iters", "0"]) == 2
