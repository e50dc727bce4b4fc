"""Spark MLlib scalers as the reference on well-conditioned data, and where MLlib loses precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_agreement import exact_std, fit_with
from pyspark.ml.feature import MaxAbsScaler, MinMaxScaler, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from normcore.io import open_input
from pipelines.spark.columns import normalize_frame
from pipelines.spark.frames import read_frame

COLUMNS = ["x0", "x1", "x2"]
ROWS = 3000


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three well-conditioned columns (means of the order of their spread) and a row id."""
    rng = np.random.default_rng(21)
    table = pa.table(
        {
            "id": np.arange(ROWS),
            "x0": rng.normal(5.0, 2.0, ROWS),
            "x1": rng.normal(-100.0, 30.0, ROWS),
            "x2": rng.uniform(-7.0, 10.0, ROWS),
        }
    )
    path = tmp_path_factory.mktemp("mllib") / "conditioned.parquet"
    pq.write_table(table, path, row_group_size=1000)
    return path


def _ours(spark, data: Path, method: str, ddof: int = 0) -> np.ndarray:
    artifact = fit_with("spark", {"features": [{"name": c, "method": method} for c in COLUMNS], "ddof": ddof}, data)
    frame = normalize_frame(read_frame(spark, open_input(str(data))), artifact)
    rows = frame.orderBy("id").select(*COLUMNS).collect()
    return np.array([[row[c] for c in COLUMNS] for row in rows])


def _mllib(spark, data: Path, scaler) -> np.ndarray:
    frame = VectorAssembler(inputCols=COLUMNS, outputCol="features").transform(spark.read.parquet(str(data)))
    scaled = scaler.setInputCol("features").setOutputCol("scaled").fit(frame).transform(frame)
    rows = scaled.orderBy("id").select(vector_to_array("scaled").alias("scaled")).collect()
    return np.array([row.scaled for row in rows])


@pytest.mark.parametrize(
    ("method", "ddof", "scaler", "tolerance"),
    [
        ("zscore", 1, lambda: StandardScaler(withMean=True, withStd=True), 1e-13),
        ("minmax", 0, MinMaxScaler, 1e-15),
        ("maxabs", 0, MaxAbsScaler, 1e-15),
    ],
    ids=["StandardScaler", "MinMaxScaler", "MaxAbsScaler"],
)
def test_output_equals_mllib_scaler(spark, conditioned: Path, method: str, ddof: int, scaler, tolerance: float) -> None:
    """MLlib multiplies by 1 / scale where we divide: a last-bit difference at most."""
    ours = _ours(spark, conditioned, method, ddof)
    theirs = _mllib(spark, conditioned, scaler())
    assert ours.shape == theirs.shape == (ROWS, len(COLUMNS))
    print(f"{method}: max |ours - MLlib| = {np.max(np.abs(ours - theirs)):.2e}")
    assert np.max(np.abs(ours - theirs)) <= tolerance * max(1.0, float(np.max(np.abs(theirs))))


def test_at_an_offset_of_1e9_mllib_std_drifts_and_ours_is_exact(spark, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    values = 1e9 + rng.normal(0.0, 1.0, 20_000)
    path = tmp_path / "offset.parquet"
    pq.write_table(pa.table({"x": values}), path, row_group_size=5000)
    exact = exact_std(values, ddof=1)

    ours = fit_with("spark", {"features": [{"name": "x"}], "ddof": 1}, path).transform("x").values["scale"]
    frame = VectorAssembler(inputCols=["x"], outputCol="v").transform(spark.read.parquet(str(path)))
    theirs = float(StandardScaler(inputCol="v", withMean=True, withStd=True).fit(frame).std[0])
    native = spark.read.parquet(str(path)).agg(F.stddev_samp("x")).first()[0]

    print(
        f"relative error of the std at 1e9: ours {abs(ours - exact) / exact:.2e}, "
        f"MLlib {abs(theirs - exact) / exact:.2e}, stddev_samp {abs(native - exact) / exact:.2e}"
    )
    assert abs(ours - exact) / exact < 1e-14
    assert abs(theirs - exact) / exact > 1e-9, "MLlib was expected to lose precision at this offset"
    assert abs(native - exact) / exact > 1e-9, "Spark's stddev_samp was expected to lose precision at this offset"
