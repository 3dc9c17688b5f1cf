"""The results store: one directory per run, suite-level tables written atomically.

results/<suite>/<run_id>/ holds config.json (the resolved config), state.pt (the last checkpoint
and the evaluations so far), run.log, curves.parquet, evals.parquet, samples/ (image grids),
toy.npz (toy data), error.log (after a failure) and done.json, the completion marker holding the
run's row. The suite's runs/curves/evals tables are rebuilt from the finished runs of the suite;
references.parquet holds the real-data floor of each of its datasets (``reference_rows``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from gans import MetricRow, write_atomically

DONE_MARKER = "done.json"
# The tables' vocabulary, shared by the runner that writes them and the report that reads them.
FAILED = "failed"
INCEPTION_SUFFIX = "_inception"  # final-metric columns from Inception features: never mixed
# Evaluation stages: along the way (the intermediate plan, from iteration 0 on), the untrained
# generator at iteration 0 and the trained one at the end (both the final plan).
INTERMEDIATE, INITIAL, FINAL = "intermediate", "initial", "final"
REAL_DATA = "real data"  # the reference column of the real-data floor's rows
REFERENCES_TABLE = "references.parquet"
# A floor's row: which dataset, "real data", the stage whose plan it follows, then the metric row.
REFERENCE_COLUMNS = (
    "dataset",
    "reference",
    "stage",
    *(field.name for field in dataclasses.fields(MetricRow)),
)
CONFIG_COLUMNS = ("run_id", "strategy", "dataset", "arch", "width", "seed")


def write_json(path: Path, obj: Any) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


def write_table(path: Path, frame: pd.DataFrame) -> None:
    write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_done(run_dir: Path) -> dict[str, Any] | None:
    marker = run_dir / DONE_MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def collect_tables(
    suite_dir: Path, run_rows: list[dict[str, Any]]
) -> dict[str, pd.DataFrame] | None:
    """Write runs/curves/evals tables (and runs.csv) for ``run_rows``, config columns on every row.

    Returns:
        The three tables by name; None (and nothing written) when there are no rows.
    """
    if not run_rows:
        return None
    runs = pd.DataFrame(run_rows)
    config = runs[list(CONFIG_COLUMNS)]
    tables = {"runs": runs}
    for name in ("curves", "evals"):
        parts = [
            pd.read_parquet(suite_dir / row["run_id"] / f"{name}.parquet")
            for row in run_rows
            if (suite_dir / row["run_id"] / f"{name}.parquet").exists()
        ]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"run_id": []})
        frame = config.merge(frame, on="run_id", how="right")
        tables[name] = frame
    for name, frame in tables.items():
        write_table(suite_dir / f"{name}.parquet", frame)
    write_atomically(suite_dir / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False))
    return tables
