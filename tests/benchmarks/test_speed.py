import json
import statistics

import pytest
import torch

import gans
from benchmarks.executors import threads_per_worker
from benchmarks.speed import main, measure
from benchmarks.textbook import TextbookImages

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


CPU = torch.device("cpu")


def measure_mlp(strategy, loops=("trainer",), iters=1):
    return measure(strategy, "mlp", W, B, iters, 1, "25gaussians", CPU, loops=loops)


@pytest.mark.parametrize(("strategy", "n_critic"), [("gan", 1), ("wgan", 5)])
def test_flops_per_generator_iteration_match_a_hand_count(strategy, n_critic):
    result = measure_mlp(strategy, iters=2)["trainer"]
    assert result["flops_per_gen_iter"] == n_critic * CRITIC_STEP + GENERATOR_STEP
    assert result["critic_steps_per_s"] == pytest.approx(n_critic * result["gen_iters_per_s"])
    assert result["achieved_gflops"] == pytest.approx(
        result["flops_per_gen_iter"] * result["gen_iters_per_s"] / 1e9
    )


def test_the_textbook_loop_also_computes_the_critics_weight_gradients_in_the_generator_step():
    results = measure_mlp("gan", loops=("trainer", "textbook"))
    # Separate critic calls on real and fake cost what one call on both does; the extra work is
    # the critic's weight gradients during the generator step, one matmul per layer.
    extra = results["textbook"]["flops_per_gen_iter"] - results["trainer"]["flops_per_gen_iter"]
    assert extra == linear_flops(B, D)


def test_the_gradient_penalty_double_backward_is_counted():
    wgan = measure_mlp("wgan")["trainer"]["flops_per_gen_iter"]
    wgan_gp = measure_mlp("wgan-gp", loops=("trainer", "textbook"))
    # Per critic step the penalty adds: a critic forward on the interpolates; the input gradient,
    # one matmul per layer; the backward of that, weight gradients of every layer and gradients of
    # the incoming gradient of every layer but the last (whose incoming gradient is the constant
    # from .sum()).
    hidden = linear_flops(B, D[:-1])
    extra_per_step = (wgan_gp["trainer"]["flops_per_gen_iter"] - wgan) / 5
    assert extra_per_step == 3 * linear_flops(B, D) + hidden
    # The textbook loop's plain ReLUs also make autograd send zeros back through the forward on
    # the interpolates (ReLU's backward has a zero derivative in its input): weight and input
    # gradients of the hidden layers, per critic step. The trainer's gated ReLUs do not.
    textbook_extra = (
        wgan_gp["textbook"]["flops_per_gen_iter"] - wgan_gp["trainer"]["flops_per_gen_iter"]
    )
    assert textbook_extra == 5 * 2 * hidden + linear_flops(B, D)


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
        "loop",
        "strategy",
        "arch",
        "width",
        "batch",
        "threads",
        "device",
        "compile",
        "gen_iters_per_s",
        "critic_steps_per_s",
        "flops_per_gen_iter",
        "achieved_gflops",
        "gemm_gflops",
    }
    assert (result["threads"], result["width"], result["batch"]) == (1, 4, 8)
    assert result["gen_iters_per_s"] > 0 and result["gemm_gflops"] > 0


def test_compare_measures_both_loops_and_their_ratio(capsys):
    args = ["--strategy", "wgan", "--arch", "mlp", "--dataset", "25gaussians", "--width", "8"]
    # One round: the speedup is the ratio of its two windows (with more, their median).
    assert main([*args, "--iters", "2", "--repeats", "1", "--compare", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trainer, textbook = result["trainer"], result["textbook"]
    assert (trainer["loop"], textbook["loop"]) == ("trainer", "textbook")
    assert trainer["gemm_gflops"] == textbook["gemm_gflops"]  # one GEMM measurement serves both
    assert result["speedup"] == pytest.approx(
        trainer["gen_iters_per_s"] / textbook["gen_iters_per_s"]
    )
    assert result["speedup_ci95"] is None  # no interval from one round


def test_compare_gives_an_interval_around_the_median_ratio_from_three_rounds(capsys):
    args = ["--strategy", "gan", "--arch", "mlp", "--dataset", "25gaussians", "--width", "8"]
    assert main([*args, "--iters", "2", "--repeats", "3", "--compare"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("trainer / textbook") and "(95% CI " in line
    assert main([*args, "--iters", "2", "--repeats", "3", "--compare", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    low, high = result["speedup_ci95"]
    # A resampled median of three ratios is one of them, the smallest or the largest each with a
    # chance of 7/27, far above 2.5%: the interval runs from the smallest to the largest ratio,
    # and the median lies strictly inside (timed ratios do not tie).
    assert low < result["speedup"] < high


def test_bad_input_is_one_line(capsys):
    assert main(["--strategy", "nope", "--iters", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown loss strategy 'nope'")
    assert main(["--strategy", "gan", "--iters", "0"]) == 2


def test_the_textbook_dataset_converts_each_sample_back_to_the_suites_pixels():
    digits = gans.load_dataset("mnist-5k").train[:10]
    dataset = TextbookImages(digits)
    converted = torch.stack([dataset[i][0] for i in range(len(dataset))])
    torch.testing.assert_close(converted, digits, rtol=0, atol=1 / 255)


def test_stack_measures_every_strategy_and_k_stacked_and_separate(capsys):
    args = ["--stack", "1,2", "--strategy", "gan,wgan-gp", "--arch", "mlp", "--width", "8"]
    args += ["--dataset", "25gaussians", "--batch", "16", "--iters", "2", "--warmup", "1"]
    assert main(args + ["--repeats", "2", "--workers", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["strategy"], row["k"]) for row in rows] == [
        ("gan", 1),
        ("gan", 2),
        ("wgan-gp", 1),
        ("wgan-gp", 2),
    ]
    for row in rows:
        assert row["workers"] == 2 and row["threads_per_worker"] == threads_per_worker(2)
        separate, stacked = row["separate_rounds"], row["stacked_rounds"]
        assert len(separate) == len(stacked) == 2 and min(separate + stacked) > 0
        assert row["separate_member_iters_per_s"] == statistics.median(separate)
        assert row["stacked_member_iters_per_s"] == statistics.median(stacked)
        # The speedup: the median of each round's ratio of two adjacent windows.
        ratios = [b / a for a, b in zip(separate, stacked)]
        assert row["speedup"] == statistics.median(ratios)
        assert row["speedup_ci95"] is None  # fewer than 3 rounds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "0"], "error: --stack must be comma-separated integers >= 1, got '0'"),
        (["--stack", "2,x"], "error: --stack must be comma-separated integers >= 1, got '2,x'"),
        (["--stack", "2", "--dataset", "nope"], "error: unknown dataset 'nope'"),
    ],
)
def test_bad_stack_input_is_one_line(capsys, args, message):
    assert main(["--strategy", "gan", "--arch", "mlp"] + args) == 2
    assert capsys.readouterr().err.strip().startswith(message)
