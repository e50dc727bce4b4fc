"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def exact_mean_var(values) -> tuple[float, float]:
    """Mean and population variance of the finite values, computed in exact rationals."""
    finite = [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64) if np.isfinite(v)]
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / len(finite)
    return float(mean), float(var)


def write_parts(table: pa.Table, directory: Path, files: int) -> Path:
    """Write ``table`` as ``files`` Parquet files (contiguous slices, in order) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index in range(files):
        part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
        pq.write_table(part, directory / f"part-{index:05d}.parquet")
    return directory


@pytest.fixture(scope="session")
def sample_table() -> pa.Table:
    """5,000 rows of the realistic sample (nulls, NaN, heavy tail, constant, strings)."""
    from normcore.sample import generate_sample

    return generate_sample(5_000, seed=11)


@pytest.fixture()
def sample_dir(tmp_path: Path, sample_table: pa.Table) -> Path:
    """The sample table as 4 Parquet files in a fresh directory."""
    return write_parts(sample_table, tmp_path / "sample", 4)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole test session: 2 cores, no UI, few shuffle partitions.

    The master ``local[2,2]`` lets a failed task run a second time (Spark's local mode
    does not retry otherwise), which the fault-tolerance tests rely on.
    """
    from pipelines.spark.session import get_session

    session = get_session("local[2,2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
