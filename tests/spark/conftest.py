"""Fixtures of the Spark engine tests (the session-wide ``spark`` fixture is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from spark_data import engine_table, write_engine_files


@pytest.fixture(scope="session")
def engine_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The engine table as 4 Parquet files (written once per test session)."""
    return write_engine_files(engine_table(), tmp_path_factory.mktemp("spark") / "input")
