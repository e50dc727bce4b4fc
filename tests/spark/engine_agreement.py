"""Reusable checks that two engines agree: fit and apply through the engine contract,
then compare artifacts (statistics to a relative tolerance) and outputs (exactly).

Any engine module of ``normcore.engines.ENGINE_MODULES`` can be compared with any
other (``"local"``, ``"spark"``, ``"beam"``); references are independent of the
engine under test.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from normcore.apply import ApplyCounts
from normcore.artifact import Artifact
from normcore.config import build_job
from normcore.engines import get_engine
from normcore.io import open_input
from normcore.plan import resolve_plan

#: Statistics that are counts (compared exactly).
COUNT_FIELDS = ("count", "null_count", "nan_count", "inf_count")
#: Floating statistics and transform parameters (compared to a relative tolerance).
FLOAT_STATS = ("mean", "var", "std", "min", "max", "max_abs")
FLOAT_PARAMS = ("shift", "scale", "offset", "lambda", "input_min")


def fit_with(engine: str, config: dict[str, Any], data: Path) -> Artifact:
    """Fit ``config`` (a job dict) on ``data`` with ``engine``."""
    job = build_job({**config, "engine": engine}, "test")
    source = open_input(str(data))
    plan = resolve_plan(job, source.schema, source.path)
    return get_engine(engine).fit(job, plan, source)


def apply_with(
    engine: str, artifact: Artifact, data: Path, output: Path, *, inverse: bool = False, config: dict | None = None
) -> ApplyCounts:
    """Apply ``artifact`` to ``data`` with ``engine``, writing Parquet into the fresh directory ``output``."""
    job = build_job({**(config or {}), "engine": engine}, "test")
    output.mkdir(parents=True)
    return get_engine(engine).apply(job, artifact, open_input(str(data)), output, inverse=inverse)


def read_output(directory: Path, sort_by: str = "id") -> pa.Table:
    """An output directory as one table, rows sorted by ``sort_by``, schema metadata dropped."""
    table = ds.dataset(directory).to_table()
    return table.sort_by(sort_by).replace_schema_metadata(None)


def _close(expected: Any, actual: Any, rtol: float, scale: float, where: str) -> None:
    if expected is None or actual is None:
        assert expected is None and actual is None, f"{where}: {expected!r} != {actual!r}"
        return
    tolerance = rtol * max(abs(expected), abs(actual), scale)
    assert abs(expected - actual) <= tolerance, f"{where}: {expected!r} vs {actual!r} (tolerance {tolerance:.3g})"


def _assert_features_agree(expected: dict, actual: dict, rtol: float, where: str) -> None:
    assert list(actual) == list(expected), f"{where}: features {list(actual)} != {list(expected)}"
    for name, entry in expected.items():
        other = actual[name]
        stats, other_stats = entry["stats"], other["stats"]
        here = f"{where}.{name}"
        for field in COUNT_FIELDS:
            assert stats[field] == other_stats[field], f"{here}.stats.{field}: {stats[field]} != {other_stats[field]}"
        spread = stats["std"] or 0.0
        for field in FLOAT_STATS:
            _close(stats[field], other_stats[field], rtol, spread, f"{here}.stats.{field}")
        transform, other_transform = entry["transform"], other["transform"]
        for field in ("method", "kind", "params", "constant", "clip", "output"):
            assert transform.get(field) == other_transform.get(field), f"{here}.transform.{field}"
        for field in FLOAT_PARAMS:
            if field in transform:
                _close(transform[field], other_transform[field], rtol, spread, f"{here}.transform.{field}")
        for field in ("quantiles", "references"):
            if field in transform:
                assert len(transform[field]) == len(other_transform[field]), f"{here}.transform.{field}"
                for a, b in zip(transform[field], other_transform[field], strict=True):
                    _close(a, b, rtol, spread, f"{here}.transform.{field}")


def assert_artifacts_agree(expected: Artifact, actual: Artifact, rtol: float = 1e-12) -> None:
    """Same rows, features, keys, counts and methods; floats within ``rtol`` (relative to
    the larger magnitude, or to the column's standard deviation for values near zero)."""
    left, right = expected.document, actual.document
    for field in ("rows", "ddof", "key"):
        assert left.get(field) == right.get(field), f"{field}: {left.get(field)} != {right.get(field)}"
    _assert_features_agree(left["features"], right["features"], rtol, "features")
    assert sorted(left.get("keys", {})) == sorted(right.get("keys", {})), "key values differ"
    for value, entry in left.get("keys", {}).items():
        assert entry["rows"] == right["keys"][value]["rows"], f"keys.{value}.rows"
        _assert_features_agree(entry["features"], right["keys"][value]["features"], rtol, f"keys.{value}.features")


def assert_tables_equal(expected: pa.Table, actual: pa.Table, atol: dict[str, float] | None = None) -> None:
    """Same schema (names and types) and values: nulls, NaN and infinities in the same
    places, floating values equal (or within ``atol[column]``), everything else equal."""
    assert actual.schema.names == expected.schema.names
    assert actual.schema.types == expected.schema.types, f"{actual.schema} != {expected.schema}"
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        left, right = expected.column(name).combine_chunks(), actual.column(name).combine_chunks()
        assert left.is_null().equals(right.is_null()), f"column '{name}': nulls differ"
        if pa.types.is_floating(left.type):
            a = left.to_numpy(zero_copy_only=False)
            b = right.to_numpy(zero_copy_only=False)
            assert np.array_equal(np.isnan(a), np.isnan(b)), f"column '{name}': NaN differ"
            with np.errstate(invalid="ignore"):
                gap = np.where(a == b, 0.0, np.abs(a - b))
            worst = float(np.nanmax(np.where(np.isnan(a), 0.0, gap), initial=0.0))
            allowed = (atol or {}).get(name, 0.0)
            assert worst <= allowed, f"column '{name}': values differ by up to {worst:.3g} (allowed {allowed:.3g})"
        else:
            assert left.equals(right), f"column '{name}' differs"


def assert_round_trip(original: pa.Table, restored: pa.Table, features: list[dict], rtol: float = 1e-9) -> None:
    """``restored`` (an inverse of an output) equals ``original`` (the input, features as
    float64) within ``rtol`` of each feature's largest magnitude; clipped values aside."""
    for feature in features:
        name = feature["name"]
        expected = original.column(name).to_numpy(zero_copy_only=False)
        actual = restored.column(name).to_numpy(zero_copy_only=False)
        finite = np.isfinite(expected)
        assert np.array_equal(np.isnan(expected), np.isnan(actual)), f"{name}: NaN differ"
        scale = float(np.max(np.abs(expected[finite]), initial=1.0))
        gap = float(np.max(np.abs(expected[finite] - actual[finite]), initial=0.0))
        assert gap <= rtol * scale, f"{name}: round trip off by {gap:.3g} ({gap / scale:.3g} relative)"


def exact_std(values: np.ndarray, ddof: int) -> float:
    """Standard deviation of the finite ``values`` from exact rational sums (then rounded once)."""
    finite = [Fraction(float(v)) for v in values if math.isfinite(v)]
    mean = sum(finite) / len(finite)
    variance = sum((v - mean) ** 2 for v in finite) / (len(finite) - ddof)
    return math.sqrt(variance.numerator / variance.denominator) if variance else 0.0
