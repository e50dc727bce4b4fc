"""Data of the Spark engine tests: one small multi-file Parquet input with every kind of column."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Columns that are never features (the key columns can be keys).
PASSTHROUGH = ["id", "name", "flag", "when", "small", "k_str", "k_int", "k_bool"]
#: Numeric feature columns.
FEATURES = ["a", "b", "c", "d", "big", "tied", "e", "f", "g", "h", "w", "v"]
ROWS = 2000
FILES = 4


def engine_table(rows: int = ROWS, seed: int = 5) -> pa.Table:
    """Features of several types and conditions, pass-through columns, three key columns.

    ``a`` normal around 1e3; ``b`` float32; ``c`` int64 counts; ``d`` with NaN, +-inf and
    nulls; ``big`` 1e9 + N(0, 1); ``tied`` with many ties (quantile ties); ``e`` heavy
    tailed; ``f`` normal; ``g`` int16; ``h`` skewed of both signs (``log``, ``power``); ``w``
    positive and skewed (Box-Cox); ``v`` heavy tailed of both signs (Student t). Key
    ``k_str`` has nulls and a ``rare`` value whose ``d`` and ``f`` are never finite (its keyed
    entries fall back to the global ones).
    """
    rng = np.random.default_rng(seed)
    d = rng.normal(-4.0, 2.0, rows)
    d[rng.random(rows) < 0.05] = np.nan
    d[rng.random(rows) < 0.02] = np.inf
    d[rng.random(rows) < 0.02] = -np.inf
    k_str = rng.choice(np.array(["north", "south", "east", "west"]), rows).astype(object)
    k_str[rng.random(rows) < 0.05] = None
    rare = np.arange(rows) % 401 == 7
    k_str[rare] = "rare"
    d[rare] = np.nan
    f = rng.normal(5.0, 2.0, rows)
    f[rare] = np.nan
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "name": pa.array([f"row-{i}" for i in range(rows)]),
            "flag": pa.array(rng.random(rows) < 0.3),
            "when": pa.array([start + datetime.timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", "UTC")),
            "small": pa.array(rng.integers(-50, 50, rows), mask=rng.random(rows) < 0.03),
            "a": pa.array(rng.normal(1000.0, 50.0, rows)),
            "b": pa.array(rng.normal(0.0, 1.0, rows).astype(np.float32)),
            "c": pa.array(rng.poisson(7.0, rows).astype(np.int64)),
            "d": pa.array(d, mask=rng.random(rows) < 0.03),
            "big": pa.array(1e9 + rng.normal(0.0, 1.0, rows)),
            "tied": pa.array(np.round(rng.normal(0.0, 1.0, rows), 1)),
            "e": pa.array(rng.pareto(1.5, rows) * 20.0),
            "f": pa.array(f),
            "g": pa.array(rng.integers(-300, 300, rows).astype(np.int16)),
            "h": pa.array(rng.choice([-1.0, 1.0, 1.0], rows) * rng.lognormal(1.0, 1.2, rows)),
            "w": pa.array(rng.gamma(2.0, 3.0, rows) + 0.01),
            "v": pa.array(rng.standard_t(3.0, rows) * 100.0),
            "k_str": pa.array(k_str, pa.string()),
            "k_int": pa.array(rng.integers(-2, 2, rows).astype(np.int32)),
            "k_bool": pa.array(rng.random(rows) < 0.4),
        }
    )


def write_engine_files(table: pa.Table, directory: Path, files: int = FILES, promote: bool = True) -> Path:
    """``table`` as ``files`` Parquet files with row groups of 200 rows; with ``promote``
    the first file stores ``small`` and ``c`` as int32 (the input's unified schema
    promotes them to int64)."""
    directory.mkdir(parents=True)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index in range(files):
        part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
        if promote and index == 0:
            for name in ("small", "c"):
                position = part.schema.get_field_index(name)
                part = part.set_column(position, name, part.column(name).cast(pa.int32()))
        pq.write_table(part, directory / f"part-{index:05d}.parquet", row_group_size=200)
    return directory
