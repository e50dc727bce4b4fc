"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from core_support import write_parts
from hypothesis import settings

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

# Property tests explore the same examples on every run: CI stays reproducible, and a
# failure found once is found again.
settings.register_profile("normcore", derandomize=True, deadline=None, database=None)
settings.load_profile("normcore")


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
