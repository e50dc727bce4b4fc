"""Spark fit: the same statistics as the local engine, retries that count nothing twice."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_agreement import assert_artifacts_agree, fit_with
from pyspark import TaskContext
from spark_data import engine_table, write_engine_files

from normcore.config import build_job
from normcore.errors import InputError
from normcore.fitting import build_artifact
from normcore.io import open_input
from normcore.plan import resolve_plan
from pipelines.spark import engine as spark_engine
from pipelines.spark.frames import open_url, read_frame
from pipelines.spark.stats import file_states, fit_frame, merge_states

ALL_METHODS = {
    "features": [
        {"name": "a", "method": "zscore"},
        {"name": "b", "method": "minmax", "params": {"feature_range": [-1, 1], "clip": True}},
        {"name": "c", "method": "decimal"},
        {"name": "d", "method": "robust"},
        {"name": "big", "method": "mean"},
        {"name": "tied", "method": "quantile", "params": {"n_quantiles": 100, "output": "normal"}},
        {"name": "e", "method": "maxabs"},
        {"name": "f", "method": "quantile"},
        {"name": "g", "method": "minmax"},
    ]
}


@pytest.mark.parametrize("key", [None, "k_str", "k_int", "k_bool"])
def test_fit_agrees_with_local_engine(spark, engine_data: Path, key: str | None) -> None:
    config = {**ALL_METHODS, "key": key}
    local = fit_with("local", config, engine_data)
    remote = fit_with("spark", config, engine_data)
    assert remote.engine == "spark"
    assert_artifacts_agree(local, remote, rtol=1e-12)
    if key == "k_str":
        assert "d" not in remote.document["keys"]["rare"]["features"]


def test_fit_of_a_dataframe_agrees_with_local_engine(spark, engine_data: Path) -> None:
    config = {**ALL_METHODS, "key": "k_int", "ddof": 1}
    frame = read_frame(spark, open_input(str(engine_data)))
    remote = fit_frame(frame, build_job(config, "test"), source=str(engine_data))
    assert_artifacts_agree(fit_with("local", config, engine_data), remote, rtol=1e-12)


def test_fit_of_a_url_spark_reads_agrees_with_local_engine(spark, tmp_path: Path) -> None:
    """An input only Spark's readers reach (here ``file://``, as ``s3a://`` would be) is fitted
    through a DataFrame of it: the local engine's artifact, keyed and not."""
    data = write_engine_files(engine_table(), tmp_path / "input", promote=False)
    source = open_url(spark, data.as_uri())
    assert source.files == () and source.schema.names == open_input(str(data)).schema.names
    for key in (None, "k_str"):
        config = {**ALL_METHODS, "key": key}
        job = build_job({**config, "engine": "spark"}, "test")
        remote = spark_engine.fit(job, resolve_plan(job, source.schema, source.path), source)
        assert_artifacts_agree(fit_with("local", config, data), remote, rtol=1e-12)


def test_an_unreadable_url_names_it(spark, engine_data: Path, tmp_path: Path) -> None:
    """A missing URL, and files whose types Spark's reader cannot merge (int32 and int64
    ``c``; a local path would be read with the unified schema): the message names the URL."""
    for url in ((tmp_path / "missing").as_uri(), engine_data.as_uri()):
        with pytest.raises(InputError, match=f"cannot read input '{url}' with Spark"):
            open_url(spark, url)


def test_row_group_splits_cover_each_row_once(engine_data: Path) -> None:
    source = open_input(str(engine_data))
    path = source.files[1]
    fragments = [f for f in source.fragments(max_bytes=1) if f.path == path]
    assert [f.row_groups for f in fragments] == [(i,) for i in range(pq.ParquetFile(path).metadata.num_row_groups)]
    rows = pa.Table.from_batches([b for f in fragments for b in source.read_fragment(f, ["id"])])
    assert rows.column("id").equals(pq.read_table(path, columns=["id"]).column("id"))


def _marker_failure(marker: Path):
    """A partition function that passes rows through, then fails the first attempt of partition 0
    (leaving ``marker`` as proof) once the rows have been consumed downstream."""

    def fail_first_attempt(index, rows):
        yield from rows
        context = TaskContext.get()
        if index == 0 and context.attemptNumber() == 0:
            marker.touch()
            raise RuntimeError("injected failure of the first attempt")

    return fail_first_attempt


def _marker_batches(marker: Path):
    """A mapInArrow function that fails the first attempt of partition 0 after its first batch."""

    def fail_after_first_batch(batches):
        context = TaskContext.get()
        for number, batch in enumerate(batches):
            if number == 1 and context.partitionId() == 0 and context.attemptNumber() == 0:
                marker.touch()
                raise RuntimeError("injected failure after one batch")
            yield batch

    return fail_after_first_batch


def test_retried_partition_counts_nothing_twice(spark, engine_data: Path, tmp_path: Path) -> None:
    assert spark.sparkContext.master == "local[2,2]", "retries need a local master with maxFailures 2"
    features = [{"name": "a"}, {"name": "d", "method": "minmax"}, {"name": "big"}]
    job = build_job({"features": features, "key": "k_str"}, "test")
    source = open_input(str(engine_data))
    plan = resolve_plan(job, source.schema, source.path)
    requests = plan.requests()
    states = merge_states(file_states(spark, source, requests, plan.key), requests, plan.key)
    clean = build_artifact(plan, *states, engine="spark")

    marker = tmp_path / "failed-after-state"
    flaky = file_states(spark, source, requests, plan.key).mapPartitionsWithIndex(_marker_failure(marker))
    retried = build_artifact(plan, *merge_states(flaky, requests, plan.key), engine="spark")
    assert marker.exists(), "the injected failure did not happen"
    assert retried.document["features"] == clean.document["features"]
    assert retried.document["keys"] == clean.document["keys"]
    assert retried.rows == clean.rows == 2000

    marker = tmp_path / "failed-mid-partition"
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "100")
    try:
        frame = read_frame(spark, source)
        flaky_frame = frame.mapInArrow(_marker_batches(marker), frame.schema)
        mid = fit_frame(flaky_frame, job, source=str(engine_data))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert marker.exists(), "the injected failure did not happen"
    assert_artifacts_agree(clean, mid, rtol=1e-12)
