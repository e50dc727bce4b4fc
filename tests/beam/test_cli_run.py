"""``normcore run --engine beam`` fits and applies in one pipeline, with the local engine's results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import pipelines.beam.engine as beam_engine
from normcore.artifact import load_artifact
from normcore.cli import main


def test_run_uses_the_single_pipeline_and_matches_the_local_engine(tmp_path: Path, monkeypatch, capsys) -> None:
    rng = np.random.default_rng(3)
    (tmp_path / "raw").mkdir()
    for index in range(2):
        table = pa.table(
            {"id": np.arange(500) + 500 * index, "x": 1e6 + rng.normal(0, 5, 500), "y": rng.poisson(4, 500)}
        )
        pq.write_table(table, tmp_path / "raw" / f"part-{index}.parquet")

    def not_expected(*args, **kwargs):
        raise AssertionError("run must not fit and apply in separate pipelines")

    results = {}
    for engine in ("local", "beam"):
        if engine == "beam":
            monkeypatch.setattr(beam_engine, "fit", not_expected)
            monkeypatch.setattr(beam_engine, "apply", not_expected)
        argv = [
            "run",
            str(tmp_path / "raw"),
            "--artifact",
            str(tmp_path / f"{engine}.json"),
            "--output",
            str(tmp_path / engine),
            "--features",
            "x,y:minmax",
            "--engine",
            engine,
        ]
        assert main(argv) == 0, capsys.readouterr().err
        results[engine] = (load_artifact(tmp_path / f"{engine}.json"), ds.dataset(tmp_path / engine).to_table())
    (local, local_rows), (beam, beam_rows) = results["local"], results["beam"]
    assert beam.engine == "beam" and beam.rows == local.rows == 1000
    for name in ("x", "y"):
        assert beam.feature(name)["stats"]["mean"] == local.feature(name)["stats"]["mean"]
    left, right = local_rows.sort_by("id"), beam_rows.sort_by("id")
    assert right.column("id").equals(left.column("id"))
    np.testing.assert_allclose(right.column("x").to_numpy(), left.column("x").to_numpy(), rtol=0, atol=1e-12)
    assert "result: PASS" in capsys.readouterr().out


def test_bad_input_in_the_single_pipeline_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys

    pq.write_table(pa.table({"x": [np.nan, np.nan], "y": [1.0, 2.0]}), tmp_path / "d.parquet")
    argv = [
        "run",
        str(tmp_path / "d.parquet"),
        "--artifact",
        str(tmp_path / "a.json"),
        "--output",
        str(tmp_path / "out"),
        "--features",
        "x,y",  # named: a column without a finite value is an error (the default selection skips it)
        "--engine",
        "beam",
    ]
    result = subprocess.run([sys.executable, "-m", "normcore.cli", *argv], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: column 'x' in '{tmp_path / 'd.parquet'}' has no finite value to fit (0 null, 2 NaN, 0 inf)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet"]
