"""Fixtures of the data-quality tests: one fitted job (raw data, artifact, normalized output)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from quality.quality_support import FittedJob, quality_table, write_config


@pytest.fixture(scope="session")
def raw_table() -> pa.Table:
    """3,000 rows of the quality table."""
    return quality_table(3_000, seed=5)


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory, raw_table: pa.Table) -> FittedJob:
    """``raw_table`` in 3 Parquet files, fitted with a sketch for every feature and applied."""
    root = tmp_path_factory.mktemp("quality")
    raw = root / "raw"
    raw.mkdir()
    bounds = np.linspace(0, raw_table.num_rows, 4).astype(int)
    for index in range(3):
        pq.write_table(raw_table.slice(bounds[index], bounds[index + 1] - bounds[index]), raw / f"part-{index}.parquet")
    config = write_config(root / "job.yaml")
    artifact, output = root / "artifact.json", root / "normalized"
    assert main(["fit", str(raw), "--artifact", str(artifact), "--config", str(config), "--sketch"]) == 0
    assert main(["apply", str(raw), "--artifact", str(artifact), "--output", str(output)]) == 0
    return FittedJob(root, raw, artifact, output, config)
