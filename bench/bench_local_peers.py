"""normcore's local engine against the single-machine tools a user would pick instead (issue 12).

The job: z-score every column of 8M rows x 8 float64 columns in 8 Parquet files (column
``f7`` is ``1e9 + N(0, 1)``), i.e. fit mean and population standard deviation, then write
the normalized columns as Parquet. Every tool runs as whole processes (start-up included),
in interleaved rounds, each job after an ``os.sync()`` (no job's time includes the kernel
writing back the previous job's output); the table gives each one's median wall seconds
and the relative error of its variance of ``f7`` (the square of the standard deviation it
normalized with) against a long-double two-pass reference.

* normcore: ``normcore fit`` + ``normcore apply`` (two processes, default workers), and
  ``normcore run --no-validate`` (the same fit and apply in one process, as each peer runs).
* polars: a lazy ``scan_parquet``, the aggregates, then ``sink_parquet`` of the expressions.
* DuckDB: ``avg`` / ``var_pop`` over ``read_parquet``, then ``COPY ... TO`` Parquet.
* pyarrow's bare multi-threaded scan of the files (what a fit must read), and a bare
  read + write copy through ``pyarrow.dataset`` with the Parquet settings normcore writes
  (no dictionary, page checksums, snappy): what an apply must read and write.

Usage: ``python bench/bench_local_peers.py --peers-python .venv-peers/bin/python
[--rows N] [--rounds R]`` (``make bench-peers``). Writes ``bench/results/local_peers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
NORMCORE = [sys.executable, "-m", "normcore.cli"]
COLUMNS = 8
FILES = 8

POLARS = """
import json, sys, polars as pl
data, out = sys.argv[1], sys.argv[2]
frame = pl.scan_parquet(data + "/*.parquet")
names = frame.collect_schema().names()
stats = frame.select([pl.col(n).mean().alias("m_" + n) for n in names]
                     + [pl.col(n).std(ddof=0).alias("s_" + n) for n in names]).collect().row(0, named=True)
frame.select([((pl.col(n) - stats["m_" + n]) / stats["s_" + n]).alias(n) for n in names]).sink_parquet(out)
print(json.dumps({"var": stats["s_f7"] ** 2}))
"""

DUCKDB = """
import json, sys, duckdb
data, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
source = f"read_parquet('{data}/*.parquet')"
names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
row = con.execute("SELECT " + ", ".join(f"avg({n}), stddev_pop({n})" for n in names) + f" FROM {source}").fetchall()[0]
columns = ", ".join(f"({n} - {row[2 * i]!r}) / {row[2 * i + 1]!r} AS {n}" for i, n in enumerate(names))
con.execute(f"COPY (SELECT {columns} FROM {source}) TO '{out}' (FORMAT parquet)")
print(json.dumps({"var": row[2 * names.index("f7") + 1] ** 2}))
"""

BARE_SCAN = """
import sys, pyarrow.dataset as ds
rows = sum(batch.num_rows for batch in ds.dataset(sys.argv[1], format="parquet").to_batches())
print(rows)
"""

BARE_COPY = """
import sys, pyarrow.dataset as ds
parquet = ds.ParquetFileFormat()
options = parquet.make_write_options(use_dictionary=False, write_page_checksum=True)
ds.write_dataset(ds.dataset(sys.argv[1], format="parquet"), sys.argv[2], format=parquet, file_options=options)
"""


def generate(directory: Path, rows: int) -> None:
    """Deterministic columns ``f0..f6`` = ``10^(c+1) + (c+1) N(0, 1)`` and ``f7`` = ``1e9 + N(0, 1)``."""
    marker = directory / "_COMPLETE"
    if marker.exists() and marker.read_text() == f"{rows}":
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(12)
    per_file = rows // FILES
    for index in range(FILES):
        columns = {f"f{c}": 10.0 ** (c + 1) + rng.standard_normal(per_file) * (c + 1) for c in range(COLUMNS - 1)}
        columns["f7"] = 1e9 + rng.standard_normal(per_file)
        pq.write_table(pa.table(columns), directory / f"part-{index:05d}.parquet", row_group_size=262_144)
    marker.write_text(f"{rows}")


def reference_variance(directory: Path) -> float:
    """Population variance of ``f7`` by two passes in long double (error far below 1e-16)."""
    values = np.concatenate(
        [pq.read_table(p, columns=["f7"]).column(0).to_numpy() for p in sorted(directory.glob("*.parquet"))]
    ).astype(np.longdouble)
    deviations = values - values.sum() / len(values)
    return float((deviations * deviations).sum() / len(values))


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _printed_variance(stdout: str) -> float:
    """The variance a peer script printed (its standard deviation squared) on its last line."""
    return json.loads(stdout.strip().splitlines()[-1])["var"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers-python", required=True, help="a Python with polars and duckdb (.venv-peers)")
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    data = ROOT / "data" / "bench" / f"peers_{args.rows // 1_000_000}m"
    generate(data, args.rows)
    work = ROOT / "data" / "bench" / "peers_out"
    peers = args.peers_python
    artifact = work / "artifact.json"

    def fit_then_apply() -> tuple[float, float]:
        fit, _ = timed([*NORMCORE, "fit", str(data), "--artifact", str(artifact)])
        apply, _ = timed([*NORMCORE, "apply", str(data), "--artifact", str(artifact), "--output", str(work / "nc")])
        return fit, apply

    def normcore_job() -> float:
        fit, apply = fit_then_apply()
        seconds["normcore fit"].append(fit)
        seconds["normcore apply"].append(apply)
        return fit + apply

    def normcore_run() -> float:
        argv = ["run", str(data), "--artifact", str(artifact), "--output", str(work / "nc"), "--no-validate"]
        return timed([*NORMCORE, *argv])[0]

    jobs = {
        "normcore fit + apply": normcore_job,
        "normcore run --no-validate": normcore_run,
        "polars": lambda: timed([peers, "-c", POLARS, str(data), str(work / "polars.parquet")])[0],
        "duckdb": lambda: timed([peers, "-c", DUCKDB, str(data), str(work / "duckdb.parquet")])[0],
        "pyarrow bare scan": lambda: timed([sys.executable, "-c", BARE_SCAN, str(data)])[0],
        "pyarrow bare copy": lambda: timed([sys.executable, "-c", BARE_COPY, str(data), str(work / "copy")])[0],
    }
    seconds: dict[str, list[float]] = {name: [] for name in [*jobs, "normcore fit", "normcore apply"]}
    for _ in range(args.rounds):
        for name, job in jobs.items():
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            os.sync()  # the previous job's output reaches the disk before this job starts, not while it runs
            seconds[name].append(job())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    exact = reference_variance(data)

    def fitted_variance(job: Callable[[], object]) -> float:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        job()
        return json.loads(artifact.read_text())["features"]["f7"]["stats"]["var"]

    errors = {
        "normcore fit + apply": fitted_variance(fit_then_apply),
        "normcore run --no-validate": fitted_variance(normcore_run),
        "polars": _printed_variance(timed([peers, "-c", POLARS, str(data), str(work / "polars.parquet")])[1]),
        "duckdb": _printed_variance(timed([peers, "-c", DUCKDB, str(data), str(work / "duckdb.parquet")])[1]),
    }
    errors = {name: abs(value - exact) / exact for name, value in errors.items()}
    shutil.rmtree(work, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in seconds.items() if values}
    print(f"{args.rows:,} rows x {COLUMNS} float64 columns, {FILES} Parquet files; median of {args.rounds} rounds")
    print(f"{'job':<26} {'seconds':>8}  {'variance error of 1e9 + N(0,1)':>30}")
    for name, value in medians.items():
        error = f"{errors[name]:.1e}" if name in errors else ""
        print(f"{name:<26} {value:8.2f}  {error:>30}")
    fit_ratio = medians["normcore fit"] / medians["pyarrow bare scan"]
    apply_ratio = medians["normcore apply"] / medians["pyarrow bare copy"]
    print(f"fit / bare scan {fit_ratio:.2f}x, apply / bare copy {apply_ratio:.2f}x")
    faster_peer = min(medians["polars"], medians["duckdb"])
    over_peer = {name: medians[name] / faster_peer for name in ("normcore fit + apply", "normcore run --no-validate")}
    print(", ".join(f"{name} / faster peer {ratio:.2f}x" for name, ratio in over_peer.items()))
    report = {
        "rows": args.rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": seconds,
        "medians": medians,
        "variance_relative_error": errors,
        "fit_over_bare_scan": fit_ratio,
        "apply_over_bare_copy": apply_ratio,
        "over_faster_peer": over_peer,
    }
    out = ROOT / "bench" / "results" / "local_peers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
