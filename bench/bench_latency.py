"""Latency of ``normcore.Normalizer`` on small in-memory inputs (issue 12, item 3).

Side by side in one process, on the same arrays (8 ``zscore`` features fitted on 10,000 rows):

* normcore: ``Normalizer.transform`` (and ``inverse_transform``) of a float64 ndarray of
  1, 100 and 10,000 rows, and of a pandas DataFrame of 1 and 100 rows (8 feature columns
  and a string column that passes through);
* NumPy: the bare ``(x - m) / s`` on the same ndarray (no NaN / inf handling, no checks);
* scikit-learn: ``StandardScaler.transform`` fitted on the same rows.

Each figure is the median over ``--repeat`` timeit repeats, each of enough calls to last
about 2 ms, in microseconds per call; the ratio is normcore's over NumPy's on the same
number of rows.

Usage: ``.venv/bin/python bench/bench_latency.py [--repeat R]`` (``make bench-latency``).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

import normcore

FEATURES = [f"x{i}" for i in range(8)]
ARRAY_ROWS = (1, 100, 10_000)
FRAME_ROWS = (1, 100)


def median_microseconds(call: Callable[[], object], repeat: int) -> float:
    """Median over ``repeat`` timeit repeats of the time of one ``call``, in microseconds."""
    timer = timeit.Timer(call)
    number = max(1, int(0.002 / min(timer.repeat(repeat=3, number=1))))
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=51, help="timeit repeats per figure (default 51)")
    args = parser.parse_args()

    rng = np.random.default_rng(12)
    fit_rows = rng.normal(1e3, 3.0, size=(10_000, len(FEATURES))) * np.arange(1, len(FEATURES) + 1)
    artifact = normcore.fit(fit_rows, features=FEATURES)
    normalizer = normcore.Normalizer(artifact)
    shift = np.array([artifact.feature(name)["transform"]["shift"] for name in FEATURES])
    scale = np.array([artifact.feature(name)["transform"]["scale"] for name in FEATURES])
    scaler = StandardScaler().fit(fit_rows)

    lines = [
        "| input | rows | normcore transform (us) | inverse (us) | NumPy `(x - m) / s` (us) "
        "| scikit-learn StandardScaler (us) | normcore / NumPy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(kind: str, rows: int, data: object, array: np.ndarray) -> None:
        if not np.allclose(normalizer.transform(array), (array - shift) / scale, rtol=1e-12, atol=0):
            raise SystemExit("normcore and NumPy disagree: the benchmark compares different things")
        forward = median_microseconds(lambda: normalizer.transform(data), args.repeat)
        inverse = median_microseconds(lambda: normalizer.inverse_transform(data), args.repeat)
        bare = median_microseconds(lambda: (array - shift) / scale, args.repeat)
        with warnings.catch_warnings():  # a DataFrame with a string column: sklearn needs the numbers only
            warnings.simplefilter("ignore")
            sklearn_input = data[FEATURES] if isinstance(data, pd.DataFrame) else data
            reference = median_microseconds(lambda: scaler.transform(sklearn_input), args.repeat)
        figures = " | ".join(f"{value:.1f}" for value in (forward, inverse, bare, reference))
        lines.append(f"| {kind} | {rows:,} | {figures} | {forward / bare:.1f}x |")

    for rows in ARRAY_ROWS:
        array = rng.normal(1e3, 3.0, size=(rows, len(FEATURES)))
        row("ndarray (rows, 8) float64", rows, array, array)
    for rows in FRAME_ROWS:
        array = rng.normal(1e3, 3.0, size=(rows, len(FEATURES)))
        frame = pd.DataFrame(array, columns=FEATURES).assign(label="x")
        row("pandas DataFrame (8 features + 1 string)", rows, frame, array)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
