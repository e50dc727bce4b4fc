"""Local engine fit and apply over 20M rows x 8 float64 columns of Parquet (issue 2).

Generates the data once under ``data/bench/local_20m`` (8 files, deterministic),
then runs ``normcore fit`` and ``normcore apply`` as separate processes and reports
wall time, rows/s and each process's peak RSS (from ``wait4``): the target is a
peak RSS under 1 GiB, i.e. memory bounded by the batch size, not the data size.

Usage: ``python bench/bench_local_engine.py [--rows N] [--columns C] [--files F]``.
Writes ``bench/results/local_engine.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
NORMCORE = [sys.executable, "-m", "normcore.cli"]


def generate(directory: Path, rows: int, columns: int, files: int) -> None:
    """Deterministic float64 columns (offsets 1e0..1e9) as ``files`` Parquet files."""
    marker = directory / "_COMPLETE"
    if marker.exists() and marker.read_text() == f"{rows} {columns} {files}":
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(42)
    per_file = rows // files
    for index in range(files):
        table = pa.table({f"f{c}": 10.0 ** (c + 1) + rng.standard_normal(per_file) * (c + 1) for c in range(columns)})
        pq.write_table(table, directory / f"part-{index:05d}.parquet", row_group_size=262_144)
    marker.write_text(f"{rows} {columns} {files}")


def measure(argv: list[str]) -> dict[str, float]:
    """Run ``argv``; wall seconds and peak RSS (MiB) of that process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode()}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()

    data = ROOT / "data" / "bench" / f"local_{args.rows // 1_000_000}m"
    generate(data, args.rows, args.columns, args.files)
    work = ROOT / "data" / "bench" / "local_out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    artifact = work / "artifact.json"
    fit = measure([*NORMCORE, "fit", str(data), "--artifact", str(artifact)])
    apply = measure([*NORMCORE, "apply", str(data), "--artifact", str(artifact), "--output", str(work / "normalized")])
    rows = args.rows
    report = {
        "rows": rows,
        "columns": args.columns,
        "input_bytes": sum(p.stat().st_size for p in data.glob("*.parquet")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "fit": {**fit, "rows_per_second": rows / fit["seconds"]},
        "apply": {**apply, "rows_per_second": rows / apply["seconds"]},
    }
    print(f"{rows:,} rows x {args.columns} float64 columns, {report['input_bytes'] / 2**20:.0f} MiB of Parquet")
    for step in ("fit", "apply"):
        r = report[step]
        print(
            f"  {step:<6} {r['seconds']:7.1f} s  {r['rows_per_second'] / 1e6:5.2f} M rows/s"
            f"  peak RSS {r['peak_rss_mib']:6.0f} MiB"
        )
    out = ROOT / "bench" / "results" / "local_engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work / "normalized", ignore_errors=True)


if __name__ == "__main__":
    main()
