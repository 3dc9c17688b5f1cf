"""What computed each run: its code (commit, uncommitted changes, plugin sources) and machine,
recorded when it trains, announced when a rerun reuses it, and listed by the report."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from tiny_suites import run, table, tiny_suite

from benchmarks import provenance, report
from benchmarks.provenance import code_of, code_version

OTHER_COMMIT = "abc1234"


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _commit(root, message):
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True)
    return done.stdout.decode().strip()


def test_code_is_the_library_the_application_and_their_dependencies(tmp_path):
    _git(tmp_path, "init", "-q")
    for path in ("gans/trainer.py", "benchmarks/run.py", "docs/guide.md", "tests/test_a.py"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / ".gitignore").write_text("results/\n")
    first = _commit(tmp_path, "first")
    clean = {"commit": first, "code_dirty": False, "code_diff": ""}
    assert code_version(tmp_path) == clean
    # Docs, tests, reports and ignored results are not code.
    (tmp_path / "docs" / "guide.md").write_text("more\n")
    (tmp_path / "tests" / "test_b.py").write_text("y = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "runs.csv").write_text("x\n")
    assert code_version(tmp_path) == clean
    (tmp_path / "gans" / "trainer.py").write_text("x = 2\n")
    edited = code_version(tmp_path)
    assert edited["commit"] == first and edited["code_dirty"]
    assert len(edited["code_diff"]) == 12
    (tmp_path / "gans" / "new.py").write_text("y = 1\n")  # an untracked file changes the hash too
    assert code_version(tmp_path)["code_diff"] not in ("", edited["code_diff"])
    # Not the top of a checkout (an installed package): unknown, with the package's version.
    assert code_version(tmp_path / "docs")["commit"].startswith("unknown (gan-loss-benchmark ")
    # A commit that changes no code leaves runs trained by the same code; one that does, not.
    (tmp_path / "gans" / "trainer.py").write_text("x = 1\n")
    (tmp_path / "gans" / "new.py").unlink()
    docs_only = _commit(tmp_path, "docs and tests only")
    (tmp_path / "gans" / "trainer.py").write_text("x = 3\n")
    changed = _commit(tmp_path, "code")
    here = code_version(tmp_path)
    row = {"commit": first, "code_dirty": False, "code_diff": ""}
    assert provenance._same_code_at(first, docs_only, tmp_path)
    assert not provenance._same_code_at(first, changed, tmp_path)
    assert here["commit"] == changed and not provenance.trained_here(row, here)


@pytest.fixture
def suite(tmp_path):
    path = tiny_suite(tmp_path, strategies=("gan",), seeds=(0, 1))
    assert run("--suite", path, "--out", tmp_path / "results") == 0
    return path, tmp_path / "results" / "tiny"


def _config(run_dir):
    return json.loads((run_dir / "config.json").read_text())


def test_each_run_records_its_code_and_machine(suite):
    _, suite_dir = suite
    here = code_version()
    runs = table(suite_dir, "runs")
    assert list(runs["commit"]) == [here["commit"]] * 2
    assert list(runs["code_dirty"]) == [here["code_dirty"]] * 2
    # The hash of uncommitted changes: 12 hex digits, or none in a clean checkout (what it hashes
    # is tested above; a developer's tree may change between two readings).
    assert runs["code_diff"].str.len().tolist() == [12 if here["code_dirty"] else 0] * 2
    assert list(runs["cpu"]) == [provenance.cpu_model()] * 2
    assert list(runs["cpu_capability"]) == [torch.backends.cpu.get_cpu_capability()] * 2
    assert list(runs["torch"]) == [torch.__version__] * 2
    assert list(runs["gpu"]) == ["none"] * 2
    assert list(runs["plugin_sources"]) == ["", ""]  # built-in strategies only
    for run_id in runs["run_id"]:
        (record,) = _config(suite_dir / run_id)["provenance"]
        assert record == {**provenance.run_provenance("cpu"), "from_gen_iter": 0} | {
            "code_diff": record["code_diff"]
        }


def _pretend_trained_by(run_dir, code):
    config = _config(run_dir)
    config["provenance"][0].update(code)
    (run_dir / "config.json").write_text(json.dumps(config))


def test_a_run_trained_by_other_code_is_announced_and_retrained_on_request(suite, capsys):
    path, suite_dir = suite
    old, kept = table(suite_dir, "runs")["run_id"]
    _pretend_trained_by(suite_dir / old, {"commit": OTHER_COMMIT, "code_dirty": False})
    # As if trained by the code of now: a developer's tree may have changed since.
    _pretend_trained_by(suite_dir / kept, code_version())
    capsys.readouterr()
    assert run("--suite", path, "--out", suite_dir.parent) == 0
    here = code_of(code_version())
    assert f"tiny: 1 run reused from {OTHER_COMMIT} (this checkout: {here});" in (
        capsys.readouterr().err
    )
    _pretend_trained_by(suite_dir / kept, code_version())
    kept_done = (suite_dir / kept / "done.json").stat().st_mtime_ns
    assert run("--suite", path, "--out", suite_dir.parent, "--fresh-if-code-changed") == 0
    assert "reused from" not in capsys.readouterr().err
    assert code_of(_config(suite_dir / old)["provenance"][0]) == here  # trained again, here
    assert (suite_dir / kept / "done.json").stat().st_mtime_ns == kept_done  # left alone
    assert table(suite_dir, "runs")["commit"].tolist() == [code_version()["commit"]] * 2


def test_a_run_resumed_under_other_code_records_both(suite):
    path, suite_dir = suite
    run_id = table(suite_dir, "runs")["run_id"][0]
    state = torch.load(suite_dir / run_id / "state.pt", weights_only=True)
    state["provenance"][0].update(commit=OTHER_COMMIT, code_dirty=False, code_diff="")
    torch.save(state, suite_dir / run_id / "state.pt")
    (suite_dir / run_id / "done.json").unlink()  # interrupted before its completion marker
    assert run("--suite", path, "--out", suite_dir.parent) == 0
    records = _config(suite_dir / run_id)["provenance"]
    assert [r["commit"] for r in records] == [OTHER_COMMIT, code_version()["commit"]]
    assert [r["from_gen_iter"] for r in records] == [0, 20]
    row = table(suite_dir, "runs").set_index("run_id").loc[run_id]
    assert row["commit"] == f"{OTHER_COMMIT} then {code_version()['commit']}"


def test_a_run_from_before_provenance_is_announced_as_not_recorded(suite, capsys):
    path, suite_dir = suite
    resumed, finished = table(suite_dir, "runs")["run_id"]
    state = torch.load(suite_dir / resumed / "state.pt", weights_only=True)
    del state["provenance"]  # the checkpoint and config of an older version
    torch.save(state, suite_dir / resumed / "state.pt")
    config = _config(suite_dir / resumed)
    del config["provenance"]
    (suite_dir / resumed / "config.json").write_text(json.dumps(config))
    (suite_dir / resumed / "done.json").unlink()
    (suite_dir / finished / "config.json").write_text("{damaged")
    capsys.readouterr()
    assert run("--suite", path, "--out", suite_dir.parent) == 0
    err = capsys.readouterr().err
    assert "tiny: 1 run reused from not recorded, 1 run resumed from a checkpoint of not " in err
    records = _config(suite_dir / resumed)["provenance"]
    assert [r["commit"] for r in records] == ["not recorded", code_version()["commit"]]
    row = table(suite_dir, "runs").set_index("run_id").loc[resumed]
    assert row["commit"] == f"not recorded then {code_version()['commit']}"


def test_the_report_lists_each_provenance_and_warns_of_other_code(suite, tmp_path):
    _, suite_dir = suite
    runs = table(suite_dir, "runs")
    here = code_version()
    lines, warnings = provenance.provenance_summary(runs, here)
    assert lines == [f"{provenance.describe(runs.iloc[0])}: 2 runs"]
    other = pd.DataFrame([{**runs.iloc[0], "commit": OTHER_COMMIT, "code_dirty": False}])
    other = pd.concat(
        [other, pd.DataFrame([{**runs.iloc[1], **code_version()}])], ignore_index=True
    )
    lines, warnings = provenance.provenance_summary(other, here)
    assert len(lines) == 2 and all(line.endswith(": 1 run") for line in lines)
    assert (
        f"1 of 2 runs were trained by a commit whose code differs from this report's "
        f"({here['commit']}): {OTHER_COMMIT}."
    ) in warnings
    dirty = runs.assign(code_dirty=True, code_diff="0123456789ab")
    assert provenance.provenance_summary(dirty, here)[1][0] == (
        f"2 of 2 runs were trained with uncommitted changes ({runs['commit'][0]} with uncommitted "
        "changes (diff 0123456789ab)): no commit reproduces them."
    )
    # Results of a version that recorded no provenance say so.
    older = runs.drop(columns=list(provenance.PROVENANCE_COLUMNS))
    assert provenance.provenance_summary(older, here)[1] == [
        "2 of 2 runs were trained before runs recorded their code: nothing says which commit "
        "computed them."
    ]
    other.to_parquet(suite_dir / "runs.parquet")
    assert report.main([str(suite_dir), "--out", str(tmp_path / "report")]) == 0
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "> **Provenance:** 1 of 2 runs were trained by a commit whose code differs" in readme
    assert readme.count("- **trained by**") == 2


# A strategy whose gradient penalty is scaled by a factor in the plugin's code, not in its
# hyperparameters: changing the code changes the runs while their configs stay the same.
SCALED_PLUGIN = """
import gans


class ScaledPenalty(gans.GradientPenalty):
    def apply(self, critic, real, fake, draws):
        out = super().apply(critic, real, fake, draws)
        return gans.PenaltyOutput(out.value * {factor}, out.grad_norm)


class Scaled(gans.strategies.WGANGP):
    def make_penalty(self):
        return ScaledPenalty(self.hparams.penalty_weight)


gans.register_strategy("scaled-gp", Scaled)
"""


def _run_with_plugin(suite_path, out, plugin):
    """The runner in a process of its own: a process registers a strategy name only once."""
    command = [sys.executable, "-m", "benchmarks.run", "--suite", str(suite_path)]
    command += ["--out", str(out), "--plugin", str(plugin), "--workers", "1", "--no-report"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return table(out / "tiny", "runs").set_index("run_id")


def test_a_changed_plugin_is_never_silently_reused(tmp_path):
    suite_path = tiny_suite(tmp_path, strategies=("scaled-gp",), seeds=(0,))
    out = tmp_path / "results"
    first, changed, copied = (tmp_path / name for name in ("a.py", "b.py", "c.py"))
    first.write_text(SCALED_PLUGIN.format(factor=1))
    changed.write_text(SCALED_PLUGIN.format(factor=10))  # the weight times 10, in another file
    copied.write_text(changed.read_text())  # the same code under a third name
    (before,) = _run_with_plugin(suite_path, out, first).index
    runs = _run_with_plugin(suite_path, out, changed)
    (after,) = runs.index
    assert after != before  # the changed code trained a run of its own
    sources = _config(out / "tiny" / after)["plugin_sources"]
    assert set(sources) == {"strategy", "penalty"}  # the loss and the rest are the package's
    assert sources["penalty"]["file"] == str(changed)
    assert sources["penalty"]["object"].endswith(".ScaledPenalty")
    assert (
        f"penalty {sources['penalty']['object']} from plugin file {changed} ("
        in (runs.loc[after, "plugin_sources"])
    )
    log = (out / "tiny" / after / "run.log").read_text()
    again = _run_with_plugin(suite_path, out, copied)
    assert list(again.index) == [after]  # the same code: the run is reused, not retrained
    assert (out / "tiny" / after / "run.log").read_text() == log
    # Each run trained its own plugin's code: the first logged penalties, from the same starting
    # networks and draws a few critic steps at lr 1e-4 in, are a factor of 10 apart. The bounds
    # test that factor, not rounding: half and twice it.
    penalties = [
        pd.read_parquet(out / "tiny" / run_id / "curves.parquet")["penalty"].iloc[0]
        for run_id in (before, after)
    ]
    assert 5 < penalties[1] / penalties[0] < 20, penalties
