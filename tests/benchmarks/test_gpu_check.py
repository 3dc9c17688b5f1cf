"""The prepared GPU check in its CI-sized form, on the CPU."""

import json

from benchmarks import gpu_check


def test_the_gpu_check_runs_every_path_on_the_cpu(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    assert gpu_check.main(["--out", str(out), "--work", str(work), "--device", "cpu"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["gpu_check.log", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and summary["size"] == "ci" and summary["device"] == "cpu"
    suite = summary["suite"]
    assert suite["problems"] == [] and suite["runs"] == 12 and suite["stacked"] == [2]
    assert (work / "report" / "README.md").exists() and summary["work"] == str(work)
    assert summary["compiled_penalty"]["max_abs_difference"] <= 1e-6
    timed = {
        (row["strategy"], row["mode"], row["k"])
        for row in summary["timings"]
        if row.get("member_gen_iters_per_s", 0) > 0
    }
    assert timed == {
        (strategy, mode, k)
        for strategy in gpu_check.STRATEGIES
        for mode, k in [("separate", 1), ("stacked", 1), ("stacked", 2)]
    }
    assert "passed: True" in (out / "gpu_check.log").read_text()


def test_timings_past_the_deadline_are_recorded_as_skipped():
    rows = gpu_check.timings("cpu", gpu_check.SIZES["ci"], deadline=0)
    assert len(rows) == 9 and all(row["skipped"] == "past the deadline" for row in rows)


def test_a_device_that_is_not_here_is_one_line(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path), "--device", "tpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --device tpu: no such device here (cuda or cpu)"
    )
