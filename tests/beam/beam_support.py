"""Helpers and fixtures of the Beam engine tests.

A plain module with a unique name rather than a ``conftest.py``: test directories share
``sys.path``, and several ``conftest`` modules shadow one another for ``from conftest import``.
Test modules import the fixtures they use from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline

ROWS = 4_000
KEYS = ("alpha", "beta", "gamma", "delta", "rare")


def make_table(rows: int = ROWS, seed: int = 3) -> pa.Table:
    """Features with hard numerics (1e9 offset, NaN / inf / nulls, ints, float32), a
    string key with nulls, and pass-through columns (string id, boolean flag)."""
    rng = np.random.default_rng(seed)
    offset = 1e9 + rng.normal(0.0, 1.0, rows)
    mixed = rng.normal(5.0, 2.0, rows)
    mixed[rng.random(rows) < 0.03] = np.nan
    mixed[rng.random(rows) < 0.01] = np.inf
    mixed[rng.random(rows) < 0.01] = -np.inf
    keys = rng.choice(KEYS[:-1], size=rows).astype(object)
    keys[rng.random(rows) < 0.05] = None
    keys[: 3] = "rare"
    return pa.table(
        {
            "id": pa.array([f"r{i:07d}" for i in range(rows)]),
            "key": pa.array(keys, type=pa.string()),
            "offset": pa.array(offset),
            "mixed": pa.array(mixed, mask=rng.random(rows) < 0.02),
            "counts": pa.array(rng.poisson(7.0, rows).astype(np.int64)),
            "small": pa.array(rng.gamma(2.0, 1e-3, rows).astype(np.float32)),
            "flag": pa.array(rng.random(rows) < 0.5),
        }
    )


def write_files(table: pa.Table, directory: Path, files: int = 3, row_group_size: int = 700) -> Path:
    """``table`` as ``files`` Parquet files of several row groups each."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index in range(files):
        part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
        pq.write_table(part, directory / f"part-{index:05d}.parquet", row_group_size=row_group_size)
    return directory



def with_latency(table: pa.Table, directory: Path, seed: int = 5) -> Path:
    """``table`` plus a heavy-tailed ``latency_like`` column, written as Parquet files."""
    rng = np.random.default_rng(seed)
    latency = (rng.pareto(1.5, table.num_rows) + 1.0) * 20.0
    return write_files(table.append_column("latency_like", pa.array(latency)), directory)


def local_pipeline(*flags: str) -> TestPipeline:
    """An in-process pipeline on the FnApiRunner (Beam's DirectRunner without Prism)."""
    return TestPipeline(runner=FnApiRunner(), options=PipelineOptions(list(flags)), blocking=True)


def assert_tables_equal(actual: pa.Table, expected: pa.Table) -> None:
    """Same schema, same nulls, same values bit for bit (NaN equal to NaN)."""
    assert actual.schema.equals(expected.schema, check_metadata=False), (actual.schema, expected.schema)
    for name in expected.column_names:
        got, want = actual.column(name), expected.column(name)
        assert got.is_null().equals(want.is_null()), name
        if pa.types.is_floating(want.type):
            assert np.array_equal(
                got.to_numpy(zero_copy_only=False), want.to_numpy(zero_copy_only=False), equal_nan=True
            ), name
        else:
            assert got.equals(want), name


@pytest.fixture(scope="session")
def table() -> pa.Table:
    """The test table (4,000 rows)."""
    return make_table()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, table: pa.Table) -> Path:
    """The test table as 3 Parquet files of 2 row groups each."""
    return write_files(table, tmp_path_factory.mktemp("beam") / "data")
