"""Fixtures of the Beam engine tests: multi-file Parquet data."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from beam_support import make_table, write_files


@pytest.fixture(scope="session")
def table() -> pa.Table:
    """The test table (4,000 rows)."""
    return make_table()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, table: pa.Table) -> Path:
    """The test table as 3 Parquet files of 2 row groups each."""
    return write_files(table, tmp_path_factory.mktemp("beam") / "data")
