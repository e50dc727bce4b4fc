"""Stats kernel vs NumPy on an in-memory float64 table (issue 2 benchmark).

Side by side in one process, on the same arrays (1e7 rows x 4 columns by default):

* normcore: ``FeatureStatsCombiner.add_batch`` over the Arrow table (count, mean,
  M2, min, max, max_abs, null / NaN / inf counts: every statistic in one pass);
* NumPy: ``mean`` + ``var`` + ``min`` + ``max`` per column (no NaN handling at all);
* NumPy ``sum`` per column: one memory-bound pass, the practical ceiling.

Usage: ``python bench/bench_stats_kernel.py [--rows N] [--columns C] [--repeat R]``.
Prints a table and writes ``bench/results/stats_kernel.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from normcore.stats import ColumnRequest, FeatureStatsCombiner


def _median_seconds(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    arrays = [1e9 + rng.standard_normal(args.rows) for _ in range(args.columns)]
    table = pa.table({f"c{i}": a for i, a in enumerate(arrays)})
    combiner = FeatureStatsCombiner([ColumnRequest(name) for name in table.column_names])
    combiner.add_batch(combiner.create_accumulator(), table.slice(0, 1000))  # JIT warm-up

    def normcore_stats() -> None:
        combiner.add_batch(combiner.create_accumulator(), table)

    def numpy_stats() -> None:
        for a in arrays:
            a.mean(), a.var(), a.min(), a.max()

    def numpy_sum() -> None:
        for a in arrays:
            a.sum()

    results = {}
    for _ in range(2):  # interleave rounds so drift in machine load hits every contender
        for name, function in (
            ("normcore", normcore_stats),
            ("numpy_mean_var_min_max", numpy_stats),
            ("numpy_sum", numpy_sum),
        ):
            results.setdefault(name, []).append(_median_seconds(function, args.repeat))
    seconds = {name: min(values) for name, values in results.items()}
    values = args.rows * args.columns
    report = {
        "rows": args.rows,
        "columns": args.columns,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "seconds": seconds,
        "values_per_second": {name: values / s for name, s in seconds.items()},
        "speedup_vs_numpy_stats": seconds["numpy_mean_var_min_max"] / seconds["normcore"],
        "fraction_of_numpy_sum_rate": seconds["numpy_sum"] / seconds["normcore"],
    }
    print(f"{args.rows:,} rows x {args.columns} float64 columns, median of {args.repeat} runs (best of 2 rounds)")
    for name, s in seconds.items():
        print(f"  {name:<24} {s * 1e3:8.1f} ms  {values / s / 1e9:6.2f} G values/s")
    print(f"  normcore vs NumPy mean+var+min+max: {report['speedup_vs_numpy_stats']:.2f}x faster")
    print(f"  normcore rate / NumPy sum rate (memory-bound ceiling): {report['fraction_of_numpy_sum_rate']:.2f}")
    out = Path(__file__).parent / "results" / "stats_kernel.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
