"""The Beam engine against the local engine, through the CLI: same statistics, same rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import beam_support
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pytest
from beam_support import assert_tables_equal, with_latency, write_files

from normcore.cli import main

# Fixtures shared by the Beam test modules (defined in beam_support).
table, data_dir = beam_support.table, beam_support.data_dir

CONFIG = """
features:
  - {name: offset, method: zscore}
  - {name: mixed, method: minmax}
  - {name: counts, method: decimal}
  - {name: small, method: robust, params: {sketch_k: 8192}}
  - {name: latency_like, method: quantile, params: {n_quantiles: 50, sketch_k: 8192}}
"""


def assert_close(beam: Any, local: Any, path: str = "") -> None:
    """Equal structure; numbers within 1e-12 relative (1e-300 absolute); sketch bytes skipped."""
    if isinstance(local, dict):
        assert set(beam) == set(local), path
        for name in local:
            if name != "data":  # serialized sketch: same items, order may differ
                assert_close(beam[name], local[name], f"{path}.{name}")
    elif isinstance(local, list):
        assert len(beam) == len(local), path
        for index, (b, a) in enumerate(zip(beam, local, strict=True)):
            assert_close(b, a, f"{path}[{index}]")
    elif isinstance(local, float):
        assert math.isclose(beam, local, rel_tol=1e-12, abs_tol=1e-300), (path, beam, local)
    else:
        assert beam == local, (path, beam, local)


def read_sorted(directory: Path) -> pa.Table:
    return ds.dataset(directory).to_table().sort_by("id")


def fit(data: Path, artifact: Path, engine: str, *extra: str) -> None:
    assert main(["fit", str(data), "--artifact", str(artifact), "--engine", engine, *extra]) == 0


@pytest.fixture(scope="module")
def quantile_data(tmp_path_factory: pytest.TempPathFactory, table: pa.Table) -> tuple[Path, Path]:
    """The test data plus a heavy-tailed column, and a config exercising five methods."""
    root = tmp_path_factory.mktemp("engine")
    data = with_latency(table, root / "data")
    config = root / "job.yaml"
    config.write_text(CONFIG)
    return data, config


def test_fit_matches_local_engine(quantile_data, tmp_path: Path) -> None:
    data, config = quantile_data
    fit(data, tmp_path / "local.json", "local", "--config", str(config))
    fit(data, tmp_path / "beam.json", "beam", "--config", str(config))
    local = json.loads((tmp_path / "local.json").read_text())
    beam = json.loads((tmp_path / "beam.json").read_text())
    assert beam["engine"] == "beam" and beam["rows"] == local["rows"] == 4_000
    assert_close(beam["features"], local["features"])


def test_apply_matches_local_engine(data_dir: Path, table: pa.Table, tmp_path: Path) -> None:
    artifact = tmp_path / "a.json"
    fit(data_dir, artifact, "local", "--features", "offset,mixed:minmax,counts:maxabs,small")
    for engine in ("local", "beam"):
        code = main(["apply", str(data_dir), "--artifact", str(artifact), "--output", str(tmp_path / engine),
                     "--engine", engine])
        assert code == 0
    beam, local = read_sorted(tmp_path / "beam"), read_sorted(tmp_path / "local")
    assert beam.num_rows == table.num_rows
    assert_tables_equal(beam, local)
    for name in ("offset", "mixed", "counts", "small"):
        assert beam.schema.field(name).type == pa.float64()
    # The features the files' footers show null-free are declared not null, as locally.
    nullable = [beam.schema.field(name).nullable for name in ("offset", "mixed", "counts", "small")]
    assert nullable == [False, True, False, False]
    for name in ("id", "key", "flag"):  # pass-through columns, untouched
        assert beam.column(name).equals(table.column(name))
    assert not any(p.name.startswith(("beam-temp", ".")) for p in (tmp_path / "beam").iterdir())


def test_inverse_round_trip(data_dir: Path, table: pa.Table, tmp_path: Path) -> None:
    artifact = tmp_path / "a.json"
    fit(data_dir, artifact, "beam", "--features", "offset,mixed:mean,small:minmax")
    assert main(["apply", str(data_dir), "--artifact", str(artifact), "--output", str(tmp_path / "y"),
                 "--engine", "beam"]) == 0
    assert main(["apply", str(tmp_path / "y"), "--artifact", str(artifact), "--output", str(tmp_path / "x"),
                 "--engine", "beam", "--inverse"]) == 0
    restored = read_sorted(tmp_path / "x")
    for name in ("offset", "mixed", "small"):
        original = table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(restored.column(name).to_numpy(zero_copy_only=False), original, rtol=1e-12)


def test_run_multiprocessing_matches_local(data_dir: Path, table: pa.Table, tmp_path: Path) -> None:
    """Two worker processes: same statistics as the local engine, same rows as a local apply."""
    features = ["--features", "offset,mixed,counts:minmax,small:maxabs"]
    workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    fit(data_dir, tmp_path / "beam.json", "beam", *features, *workers)
    assert main(["apply", str(data_dir), "--artifact", str(tmp_path / "beam.json"), "--output", str(tmp_path / "beam"),
                 "--engine", "beam", *workers]) == 0
    fit(data_dir, tmp_path / "local.json", "local", *features)
    beam = json.loads((tmp_path / "beam.json").read_text())
    assert_close(beam["features"], json.loads((tmp_path / "local.json").read_text())["features"])
    assert main(["apply", str(data_dir), "--artifact", str(tmp_path / "beam.json"), "--output",
                 str(tmp_path / "local"), "--engine", "local"]) == 0
    assert_tables_equal(read_sorted(tmp_path / "beam"), read_sorted(tmp_path / "local"))
    assert read_sorted(tmp_path / "beam").num_rows == table.num_rows


def test_keyed_fit_matches_pandas_groupby(data_dir: Path, table: pa.Table, tmp_path: Path) -> None:
    fit(data_dir, tmp_path / "beam.json", "beam", "--key", "key", "--features", "offset,mixed,counts")
    fit(data_dir, tmp_path / "local.json", "local", "--key", "key", "--features", "offset,mixed,counts")
    beam = json.loads((tmp_path / "beam.json").read_text())
    assert_close(beam["keys"], json.loads((tmp_path / "local.json").read_text())["keys"])
    frame = table.to_pandas()
    for name in ("offset", "mixed", "counts"):
        raw = frame[name].astype("float64")
        finite = frame.assign(value=raw)[np.isfinite(raw)]
        # Shifted by the median for mean and variance: pandas' one-pass variance loses
        # digits at a 1e9 offset (the shift changes neither the variance nor the spread).
        center = float(finite["value"].median())
        finite = finite.assign(shifted=finite["value"] - center)
        grouped = finite.groupby("key")
        expected = pd.DataFrame({
            "count": grouped["value"].count(), "min": grouped["value"].min(), "max": grouped["value"].max(),
            "mean": grouped["shifted"].mean() + center, "var": grouped["shifted"].var(ddof=0),
        })
        assert sorted(beam["keys"]) == sorted(expected.index)
        for key, row in expected.iterrows():
            stats = beam["keys"][key]["features"][name]["stats"]
            assert stats["count"] == row["count"]
            assert stats["min"] == row["min"] and stats["max"] == row["max"]
            assert math.isclose(stats["mean"], row["mean"], rel_tol=1e-12)
            assert math.isclose(stats["var"], row["var"], rel_tol=1e-12)
        # rows with a null key count only in the global statistics
        assert beam["features"][name]["stats"]["count"] == len(finite)
    assert beam["keys"]["rare"]["rows"] == 3


def test_csv_input_matches_local(table: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pacsv.write_csv(table.select(["id", "offset", "counts"]), path)
    fit(path, tmp_path / "beam.json", "beam")
    fit(path, tmp_path / "local.json", "local")
    beam = json.loads((tmp_path / "beam.json").read_text())
    assert_close(beam["features"], json.loads((tmp_path / "local.json").read_text())["features"])


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def test_bad_input_no_finite_value(table: pa.Table, tmp_path: Path, capsys) -> None:
    empty = pa.array(np.full(table.num_rows, np.nan))
    data = write_files(table.append_column("void", empty), tmp_path / "data")
    code = main(["run", str(data), "--artifact", str(tmp_path / "a.json"), "--output", str(tmp_path / "out"),
                 "--engine", "beam", "--features", "offset,void"])
    assert code == 2
    line = _error_line(capsys)
    assert "'void'" in line and "no finite value" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--features", "nope"], "column 'nope'"),
        (["--direct_num_wrkers=2"], "--direct_num_wrkers"),
        (["--features", "id"], "column 'id'"),
    ],
)
def test_bad_fit_options_write_nothing(data_dir: Path, tmp_path: Path, capsys, args, expected) -> None:
    code = main(["run", str(data_dir), "--artifact", str(tmp_path / "a.json"), "--output", str(tmp_path / "out"),
                 "--engine", "beam", *args])
    assert code == 2
    assert expected in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_apply_missing_column_and_empty_csv(data_dir: Path, table: pa.Table, tmp_path: Path, capsys) -> None:
    artifact = tmp_path / "a.json"
    fit(data_dir, artifact, "local", "--features", "offset,counts")
    capsys.readouterr()
    missing = tmp_path / "missing.csv"
    pacsv.write_csv(table.select(["id", "offset"]), missing)
    assert main(["apply", str(missing), "--artifact", str(artifact), "--output", str(tmp_path / "out"),
                 "--engine", "beam"]) == 2
    assert "counts" in _error_line(capsys)
    empty = tmp_path / "empty.csv"
    pacsv.write_csv(table.select(["id", "offset", "counts"]).slice(0, 0), empty)
    assert main(["apply", str(empty), "--artifact", str(artifact), "--output", str(tmp_path / "out"),
                 "--engine", "beam"]) == 2
    assert "no rows" in _error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "empty.csv", "missing.csv"]


def test_normalize_module_bad_input_exit_2(data_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.beam.normalize", "fit", str(data_dir), "--artifact",
         str(tmp_path / "a.json"), "--features", "offset:zscroe"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "zscroe" in lines[0]
    assert not (tmp_path / "a.json").exists()


def test_normalize_run_single_pipeline_matches_local(quantile_data, table: pa.Table, tmp_path: Path) -> None:
    """`python -m pipelines.beam.normalize run`: fit and apply in one pipeline (artifact as side input)."""
    from pipelines.beam.normalize import run

    data, config = quantile_data
    assert run(["run", str(data), "--config", str(config), "--artifact", str(tmp_path / "beam.json"),
                "--output", str(tmp_path / "beam")]) == 0
    fit(data, tmp_path / "local.json", "local", "--config", str(config))
    assert main(["apply", str(data), "--artifact", str(tmp_path / "local.json"),
                 "--output", str(tmp_path / "local")]) == 0
    beam = json.loads((tmp_path / "beam.json").read_text())
    assert_close(beam["features"], json.loads((tmp_path / "local.json").read_text())["features"])
    got, want = read_sorted(tmp_path / "beam"), read_sorted(tmp_path / "local")
    assert got.num_rows == table.num_rows
    for name in ("offset", "mixed", "counts", "small", "latency_like"):  # artifacts differ by ulps
        np.testing.assert_allclose(got.column(name).to_numpy(zero_copy_only=False),
                                   want.column(name).to_numpy(zero_copy_only=False), rtol=1e-12, atol=1e-12)
    for name in ("id", "key", "flag"):
        assert got.column(name).equals(table.column(name))


def test_normalize_run_bad_input_inside_pipeline_writes_nothing(table: pa.Table, tmp_path: Path, capsys) -> None:
    """A fit error raised inside the single pipeline still ends as one `error:` line, exit 2."""
    from pipelines.beam.normalize import run

    data = write_files(table.append_column("void", pa.array(np.full(table.num_rows, np.inf))), tmp_path / "data")
    code = run(["run", str(data), "--artifact", str(tmp_path / "a.json"), "--output", str(tmp_path / "out"),
                "--features", "offset,void"])
    assert code == 2
    line = _error_line(capsys)
    assert "'void'" in line and "no finite value" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_normalize_module_is_the_cli_and_keeps_the_configured_method(data_dir: Path, tmp_path: Path) -> None:
    """`python -m pipelines.beam.normalize` parses as the CLI does: the config's method and params hold."""
    from pipelines.beam.normalize import run

    config = tmp_path / "job.yaml"
    config.write_text(
        f"input: {data_dir}\nartifact: {tmp_path / 'a.json'}\n"
        "features:\n  - {name: offset, method: minmax, params: {feature_range: [-1, 1]}}\n"
    )
    assert run(["fit", "--config", str(config), "--features", "offset"]) == 0
    transform = json.loads((tmp_path / "a.json").read_text())["features"]["offset"]["transform"]
    assert transform["method"] == "minmax" and transform["params"]["feature_range"] == [-1.0, 1.0]
    assert transform["offset"] == -1.0
