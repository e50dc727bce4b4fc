"""Helpers for the core tests (a unique module name: ``conftest`` modules of other test
directories would shadow ``from conftest import ...``)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def exact_mean_var(values) -> tuple[float, float]:
    """Mean and population variance of the finite values, computed in exact rationals."""
    finite = [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64) if np.isfinite(v)]
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / len(finite)
    return float(mean), float(var)


def write_parts(table: pa.Table, directory: Path, files: int) -> Path:
    """Write ``table`` as ``files`` Parquet files (contiguous slices, in order) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index in range(files):
        part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
        pq.write_table(part, directory / f"part-{index:05d}.parquet")
    return directory


def assert_within_ulps(actual, expected, ulps: int) -> None:
    """``actual`` equals ``expected`` (another library's float64 output) within ``ulps`` units in
    the last place of the larger magnitude; NaN, +-inf and exact zeros must coincide."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    special = ~np.isfinite(expected) | (expected == 0)
    np.testing.assert_array_equal(actual[special], expected[special])
    finite = ~special
    spacing = np.spacing(np.maximum(np.abs(actual[finite]), np.abs(expected[finite])))
    distance = np.abs(actual[finite] - expected[finite]) / spacing
    worst = float(distance.max()) if distance.size else 0.0
    assert worst <= ulps, f"{worst:g} ulps apart (allowed {ulps})"
