"""Spark apply: native Column expressions whose output equals the local engine's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_agreement import apply_with, assert_tables_equal, fit_with, read_output
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from spark_data import engine_table, write_engine_files

from normcore.io import open_input
from normcore.keys import key_strings
from pipelines.spark.columns import normalize_frame
from pipelines.spark.frames import read_frame

#: One feature per method; ``f`` has the normal output, ``tied`` ties in its quantiles.
ALL_METHODS = [
    {"name": "a", "method": "zscore"},
    {"name": "b", "method": "minmax", "params": {"feature_range": [-1, 2], "clip": True}},
    {"name": "c", "method": "decimal"},
    {"name": "d", "method": "maxabs"},
    {"name": "big", "method": "mean"},
    {"name": "tied", "method": "quantile", "params": {"n_quantiles": 200}},
    {"name": "e", "method": "robust"},
    {"name": "f", "method": "quantile", "params": {"output": "normal"}},
    {"name": "g", "method": "identity"},
    {"name": "h", "method": "power"},
    {"name": "w", "method": "power", "params": {"method": "box-cox", "standardize": False}},
    {"name": "v", "method": "log"},
]
#: The normal output, power and log go through log / exp / log1p / expm1 of each engine's
#: maths library: not bit-exact.
FORWARD_TOLERANCE = {"f": 1e-12, "h": 1e-12, "w": 1e-12, "v": 1e-12}
INVERSE_TOLERANCE = {"f": 1e-10, "h": 1e-10, "w": 1e-10, "v": 1e-9}
PYTHON_NODES = ("BatchEvalPython", "ArrowEvalPython", "MapInArrow", "PythonUDF", "MapInPandas")


@pytest.mark.parametrize("key", [None, "k_str"])
def test_apply_output_equals_local_engine(spark, engine_data: Path, tmp_path: Path, key: str | None) -> None:
    artifact = fit_with("local", {"features": ALL_METHODS, "key": key}, engine_data)
    local_counts = apply_with("local", artifact, engine_data, tmp_path / "local")
    spark_counts = apply_with("spark", artifact, engine_data, tmp_path / "spark")
    expected, actual = read_output(tmp_path / "local"), read_output(tmp_path / "spark")
    assert_tables_equal(expected, actual, atol=FORWARD_TOLERANCE)
    assert spark_counts.to_dict() == local_counts.to_dict()
    if key is not None:
        assert "f" not in artifact.document["keys"]["rare"]["features"]

    (tmp_path / "restored").mkdir()
    pq.write_table(expected, tmp_path / "restored" / "normalized.parquet")
    apply_with("local", artifact, tmp_path / "restored", tmp_path / "local_inverse", inverse=True)
    apply_with("spark", artifact, tmp_path / "restored", tmp_path / "spark_inverse", inverse=True)
    local_inverse, spark_inverse = read_output(tmp_path / "local_inverse"), read_output(tmp_path / "spark_inverse")
    assert_tables_equal(local_inverse, spark_inverse, atol=INVERSE_TOLERANCE)


@pytest.mark.parametrize("key", ["k_int", "k_bool"])
def test_integer_and_boolean_keys_select_the_same_parameters(
    spark, engine_data: Path, tmp_path: Path, key: str
) -> None:
    artifact = fit_with("local", {"features": ALL_METHODS[:2], "key": key}, engine_data)
    apply_with("local", artifact, engine_data, tmp_path / "local")
    apply_with("spark", artifact, engine_data, tmp_path / "spark")
    assert_tables_equal(read_output(tmp_path / "local"), read_output(tmp_path / "spark"))


def test_unseen_and_null_keys_fall_back_to_global_parameters(spark, engine_data: Path, tmp_path: Path) -> None:
    artifact = fit_with("local", {"features": ALL_METHODS[:5], "key": "k_str"}, engine_data)
    table = engine_table(rows=600, seed=9)
    keys = table.column("k_str").to_pylist()
    renamed = pa.array([f"new-{v}" if v is not None and i % 3 == 0 else v for i, v in enumerate(keys)])
    table = table.set_column(table.schema.get_field_index("k_str"), "k_str", renamed)
    data = write_engine_files(table, tmp_path / "new_keys")
    local_counts = apply_with("local", artifact, data, tmp_path / "local")
    spark_counts = apply_with("spark", artifact, data, tmp_path / "spark")
    assert spark_counts.unseen_key_rows > 0 and spark_counts.null_key_rows > 0
    assert spark_counts.to_dict() == local_counts.to_dict()
    assert_tables_equal(read_output(tmp_path / "local"), read_output(tmp_path / "spark"))


@pytest.mark.parametrize(
    ("features", "key"), [(ALL_METHODS[:5], None), (ALL_METHODS, "k_int")], ids=["linear", "all-keyed"]
)
def test_physical_plan_has_no_python(spark, engine_data: Path, capsys, features: list, key: str | None) -> None:
    artifact = fit_with("local", {"features": features, "key": key}, engine_data)
    frame = read_frame(spark, open_input(str(engine_data)))
    normalized = normalize_frame(frame, artifact)
    capsys.readouterr()
    normalized.explain(mode="formatted")
    plan = capsys.readouterr().out
    assert "Project" in plan and "Scan parquet" in plan
    assert not [node for node in PYTHON_NODES if node in plan], plan
    assert normalized.columns == frame.columns
    assert [normalized.schema[name].dataType.simpleString() for name in artifact.feature_names] == ["double"] * len(
        artifact.feature_names
    )


def test_normalized_frame_equals_the_numpy_reference(spark, tmp_path: Path) -> None:
    """On a DataFrame built in memory: NaN, +-inf and null pass through, other columns untouched."""
    values = [1.5, -2.0, float("nan"), float("inf"), float("-inf"), None, 1e12, 0.0]
    frame = spark.createDataFrame([(i, v, f"s{i}") for i, v in enumerate(values)], "id long, x double, s string")
    table = pa.table({"x": pa.array(values, pa.float64())})
    pq.write_table(table, tmp_path / "x.parquet")
    artifact = fit_with("local", {"features": [{"name": "x", "method": "zscore"}]}, tmp_path / "x.parquet")
    transform = artifact.transform("x")
    reference = transform.forward(np.array([np.nan if v is None else v for v in values]))
    expected = spark.createDataFrame(
        [(i, None if v is None else float(r), f"s{i}") for i, (v, r) in enumerate(zip(values, reference, strict=True))],
        "id long, x double, s string",
    )
    actual = normalize_frame(frame, artifact)
    assertDataFrameEqual(actual, expected, rtol=0.0, atol=0.0, checkRowOrder=True)
    nan_rows = actual.where(F.isnan("x")).select("id").collect()
    assert [row.id for row in nan_rows] == [2]


@pytest.mark.parametrize(
    "array",
    [
        pa.array([-128, 0, 127, None], pa.int8()),
        pa.array([-(2**31), 5, None, 2**31 - 1], pa.int32()),
        pa.array([-(2**63), 2**63 - 1, 0, None], pa.int64()),
        pa.array([0, 4_000_000_000, None, 7], pa.uint32()),
        pa.array([True, False, None, True]),
        pa.array(["north", "", None, "é ü"]),
    ],
    ids=lambda a: str(a.type),
)
def test_spark_key_strings_follow_normcore_keys(spark, tmp_path: Path, array: pa.Array) -> None:
    pq.write_table(pa.table({"key": array}), tmp_path / "keys.parquet")
    frame = spark.read.parquet(str(tmp_path / "keys.parquet"))
    spark_strings = [row.key for row in frame.select(frame["key"].cast("string").alias("key")).collect()]
    assert spark_strings == key_strings(array).to_pylist()
