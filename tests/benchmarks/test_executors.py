import importlib.util
import textwrap

import pandas as pd
import pytest
from tiny_suites import VARIES_BY_INVOCATION

from benchmarks.run import main

TINY_SUITE = """
seeds = [0]
strategies = ["gan", "wgan-gp", "exploding-gan-executors"]

[eval]
intermediate_samples = 100
final_samples = 200

[datasets.25gaussians]
arch = "mlp"
width = 8
batch_size = 32
gen_iters = 20
eval_every = 10
"""
# A plugin strategy that fails inside training. Worker processes and Ray tasks start without the
# main process's plugins: if they did not load them again, this run would fail as an unknown
# strategy instead of with its own error.
FAILING_PLUGIN = """
import gans
from gans.strategies import GAN


class Exploding(gans.JSLoss):
    def generator_loss(self, fake_scores):
        raise RuntimeError("generator loss exploded on purpose")


class ExplodingGAN(GAN):
    def make_loss(self):
        return Exploding()


gans.register_strategy("exploding-gan-executors", ExplodingGAN, provider=__file__)
"""
EXECUTORS = {
    "local": ["--workers", "1"],
    "workers": ["--workers", "2"],
    "ray": ["--executor", "ray"],
}
ROW_KEYS = ["run_id", "gen_iter", "stage", "metric"]


def read_tables(suite_dir):
    tables = {}
    for name in ("runs", "curves", "evals"):
        frame = pd.read_parquet(suite_dir / f"{name}.parquet")
        frame = frame.drop(columns=list(VARIES_BY_INVOCATION), errors="ignore")
        tables[name] = frame.sort_values([k for k in ROW_KEYS if k in frame], ignore_index=True)
    return tables


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory):
    """The tiny suite run for real (no mocks) by every executor: exit status and tables."""
    root = tmp_path_factory.mktemp("executors")
    (root / "tiny.toml").write_text(TINY_SUITE)
    (root / "exploding_plugin.py").write_text(textwrap.dedent(FAILING_PLUGIN))
    results = {}
    for name, flags in EXECUTORS.items():
        if name == "ray" and importlib.util.find_spec("ray") is None:
            continue  # the `ray` extra is not installed
        argv = ["--suite", str(root / "tiny.toml"), "--out", str(root / name), "--no-report"]
        status = main([*argv, "--plugin", str(root / "exploding_plugin.py"), *flags])
        results[name] = status, read_tables(root / name / "tiny"), root / name / "tiny"
    return results


def test_ray_and_worker_processes_give_the_same_tables_as_local(suite_results):
    pytest.importorskip("ray")
    _, local, _ = suite_results["local"]
    assert local["runs"].set_index("strategy")["status"].to_dict() == {
        "gan": "done",
        "wgan-gp": "done",
        "exploding-gan-executors": "failed",
    }
    assert len(local["curves"]) == 2 * 20
    assert set(local["evals"]["stage"]) == {"intermediate", "initial", "final"}
    # Bit-identical, not merely close: this process trains with 2 torch threads, the workers and
    # Ray tasks with 1, but tensors this small (width 8, batch 32) stay below PyTorch's intra-op
    # parallelism grain, so every reduction runs in the same order whatever the thread count.
    for name in ("workers", "ray"):
        for table in ("runs", "curves", "evals"):
            pd.testing.assert_frame_equal(
                suite_results[name][1][table], local[table], check_exact=True
            )


@pytest.mark.parametrize("executor", list(EXECUTORS))
def test_a_failed_run_does_not_stop_the_others(executor, suite_results):
    if executor not in suite_results:
        pytest.skip("the `ray` extra is not installed")
    status, tables, suite_dir = suite_results[executor]
    assert status == 1
    runs = tables["runs"].set_index("strategy")
    assert runs.loc[["gan", "wgan-gp"], "status"].tolist() == ["done", "done"]
    assert runs.loc[["gan", "wgan-gp"], "gen_iters"].tolist() == [20, 20]
    failed = runs.loc["exploding-gan-executors"]
    assert failed["status"] == "failed"
    assert failed["message"] == "RuntimeError: generator loss exploded on purpose"
    error_log = (suite_dir / failed["run_id"] / "error.log").read_text()
    assert "generator loss exploded on purpose" in error_log
