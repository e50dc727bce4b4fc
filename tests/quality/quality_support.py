"""Helpers of the data-quality tests (a module of its own: ``conftest`` names clash across test directories)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

#: Features of the fitted job, one per family of expectations.
FEATURES = [
    {"name": "price", "method": "zscore"},
    {"name": "rate", "method": "minmax", "params": {"feature_range": [-1, 2]}},
    {"name": "count", "method": "decimal"},
    {"name": "latency", "method": "robust"},
    {"name": "score", "method": "quantile", "params": {"n_quantiles": 200}},
    {"name": "level", "method": "maxabs"},
]
PASSTHROUGH = ["id", "category", "constant", "bucket", "flag"]


def quality_table(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    """The sample table plus ``score`` (normal), ``level`` (int64), and the pass-through
    ``bucket`` (int64, nulls only in the second half of the rows) and ``flag``
    (boolean); ``shift`` moves the features price, rate, latency and score by that
    many of their standard deviations."""
    from normcore.sample import generate_sample

    table = generate_sample(rows, seed=seed)
    rng = np.random.default_rng(seed + 1)
    bucket_nulls = np.zeros(rows, dtype=bool)
    bucket_nulls[rows // 2 :: 7] = True
    table = table.append_column("score", pa.array(rng.normal(50.0, 5.0, rows) + shift * 5.0))
    table = table.append_column("level", pa.array(rng.integers(-300, 300, rows)))
    table = table.append_column("bucket", pa.array(rng.integers(0, 1000, rows), mask=bucket_nulls))
    table = table.append_column("flag", pa.array(rng.random(rows) < 0.5))
    if shift:
        for name in ("price", "rate", "latency"):
            values = table.column(name).to_numpy(zero_copy_only=False)
            spread = np.nanstd(values)
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pa.array(values + shift * spread, mask=np.isnan(values)))
    return table


@dataclass(frozen=True)
class FittedJob:
    """Paths of a fitted and applied job."""

    root: Path
    raw: Path
    artifact: Path
    output: Path
    config: Path


def write_config(path: Path, **sections) -> Path:
    """A YAML job file with the test features and extra sections."""
    path.write_text(yaml.safe_dump({"features": FEATURES, **sections}))
    return path
