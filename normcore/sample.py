"""A deterministic, realistic sample dataset for ``make run``, tests and benchmarks.

Columns: ``id`` (string), ``category`` (string, 5 values), ``price`` (~1e6,
log-normal, some nulls), ``rate`` (~1e-3, some NaN), ``count`` (int64, Poisson),
``latency`` (heavy-tailed Pareto), ``constant`` (always 42.0).

Run ``python -m normcore.sample DIR --rows N --files K`` to write Parquet files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from normcore.io import PARQUET_WRITE_OPTIONS
from normcore.paths import Target, Writes

CATEGORIES = ("books", "garden", "music", "sports", "toys")


def generate_sample(rows: int, seed: int = 7) -> pa.Table:
    """The sample table with ``rows`` rows (same ``seed``, same table)."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(mean=np.log(1e6), sigma=0.25, size=rows)
    price_nulls = rng.random(rows) < 0.01
    rate = rng.gamma(shape=2.0, scale=5e-4, size=rows)
    rate[rng.random(rows) < 0.02] = np.nan
    latency = (rng.pareto(1.5, size=rows) + 1.0) * 20.0
    return pa.table(
        {
            "id": pa.array([f"row-{i:09d}" for i in range(rows)]),
            "category": pa.array(rng.choice(CATEGORIES, size=rows)),
            "price": pa.array(price, mask=price_nulls),
            "rate": pa.array(rate),
            "count": pa.array(rng.poisson(12.0, size=rows).astype(np.int64)),
            "latency": pa.array(latency),
            "constant": pa.array(np.full(rows, 42.0)),
        }
    )


def write_sample(directory: str | Path, rows: int, files: int, seed: int = 7) -> list[Path]:
    """Write the sample as ``files`` Parquet files into ``directory``.

    The directory is replaced as a whole (staged, then moved into place); an existing
    one is replaced only if normcore wrote it (see :mod:`normcore.paths`).
    """
    table = generate_sample(rows, seed)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    written = []
    target = Target("DIR", str(directory), "dir", overwrite=True, what="sample directory", command="sample")
    with Writes([], [target]):
        for index in range(files):
            part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
            pq.write_table(part, target.staging / f"part-{index:05d}.parquet", **PARQUET_WRITE_OPTIONS)
            written.append(Path(directory) / f"part-{index:05d}.parquet")
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m normcore.sample DIR [--rows N] [--files K] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    write_sample(args.directory, args.rows, args.files, args.seed)
    print(f"sample: {args.directory} ({args.rows} rows in {args.files} Parquet files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
