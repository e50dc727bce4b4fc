"""The composite transforms in a user's pipeline: ComputeStats, per key, ApplyNormalization, metrics."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import apache_beam as beam
import beam_support
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.util import assert_that
from beam_support import local_pipeline

import normcore
from normcore.apply import BatchNormalizer
from normcore.config import JobConfig
from normcore.io import open_input
from normcore.plan import resolve_plan
from normcore.stats import ColumnRequest, StatsAccumulator
from pipelines.beam import (
    METRICS_NAMESPACE,
    AccumulatorCoder,
    ApplyNormalization,
    ComputeStats,
    FeatureStatsCombineFn,
    ReadBatches,
    WriteNormalized,
)

# Fixtures shared by the Beam test modules (defined in beam_support).
table, data_dir = beam_support.table, beam_support.data_dir

FEATURES = ["offset", "mixed", "counts", "small"]


def plan_for(table: pa.Table, **job) -> object:
    return resolve_plan(JobConfig(features=[{"name": n} for n in FEATURES], **job), table.schema, "test")


def exact_stats(values: np.ndarray) -> tuple[int, float, float]:
    """Count, mean and population variance of the finite values in exact rationals."""
    finite = [Fraction(float(v)) for v in values if np.isfinite(v)]
    mean = sum(finite) / len(finite)
    return len(finite), float(mean), float(sum((v - mean) ** 2 for v in finite) / len(finite))


def column_values(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)


def chunks(table: pa.Table, size: int) -> list[pa.Table]:
    """Compact copies (a pickled slice would carry the whole table's buffers)."""
    return [table.take(np.arange(start, min(start + size, table.num_rows))) for start in range(0, table.num_rows, size)]


@pytest.mark.parametrize("size", [1, 2, 50, 4_000, 4_042])
def test_combine_fn_merge_of_splits_is_exact(table: pa.Table, size: int) -> None:
    """create / add_input / merge / compact in any order equals an exact reference."""
    small = table.slice(0, 300)
    combine_fn = FeatureStatsCombineFn([ColumnRequest(n) for n in FEATURES])
    accumulators = []
    for part in chunks(small, size):
        accumulator = combine_fn.create_accumulator()
        accumulator = combine_fn.add_input(accumulator, part)
        accumulators.append(pickle.loads(pickle.dumps(combine_fn.compact(accumulator))))
    coder = AccumulatorCoder(StatsAccumulator)
    accumulators = [coder.decode(coder.encode(a)) for a in reversed(accumulators)]
    merged = combine_fn.extract_output(combine_fn.merge_accumulators(a for a in accumulators))
    assert merged.rows == 300
    for name in FEATURES:
        count, mean, var = exact_stats(column_values(small, name))
        moments = merged.columns[name].moments
        assert moments.count == count
        assert math.isclose(moments.mean, mean, rel_tol=1e-14)
        assert math.isclose(moments.variance(0), var, rel_tol=1e-12)


def test_compute_stats_matches_local_fit(table: pa.Table, data_dir) -> None:
    plan = plan_for(table)
    reference = normcore.fit(table, features=FEATURES)
    pipeline = local_pipeline()
    artifacts = (
        pipeline
        | "ReadBatches" >> ReadBatches(open_input(str(data_dir)), plan.columns())
        | "ComputeStats" >> ComputeStats(plan, fanout=3)
    )
    assert_that(artifacts, _same_stats_as(reference, FEATURES))
    result = pipeline.run()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]}
    mixed = column_values(table, "mixed")
    assert counters["mixed.nan_count"] == int(np.isnan(mixed).sum()) - table.column("mixed").null_count
    assert counters["mixed.null_count"] == table.column("mixed").null_count
    assert counters["mixed.inf_count"] == int(np.isinf(mixed).sum())
    assert counters["rows_read"] == table.num_rows


def _same_stats_as(reference, features, key_values=None):
    def check(artifacts):
        (artifact,) = artifacts
        assert artifact.engine == "beam" and artifact.rows == reference.rows
        for name in features:
            for key in [None, *(key_values or [])]:
                got = artifact.feature(name, key)["stats"]
                want = reference.feature(name, key)["stats"]
                for stat, value in want.items():
                    if isinstance(value, float):
                        assert math.isclose(got[stat], value, rel_tol=1e-12), (name, key, stat)
                    else:
                        assert got[stat] == value, (name, key, stat)
        assert sorted(artifact.key_values) == sorted(key_values or [])

    return check


def test_compute_stats_per_key_with_hot_key_fanout(table: pa.Table, data_dir) -> None:
    plan = plan_for(table, key="key")
    reference = normcore.fit(table, features=FEATURES, key="key")
    pipeline = local_pipeline()
    artifacts = (
        pipeline
        | "ReadBatches" >> ReadBatches(open_input(str(data_dir)), plan.columns())
        | "ComputeStats" >> ComputeStats(plan, fanout=2)
    )
    assert_that(artifacts, _same_stats_as(reference, FEATURES, ["alpha", "beta", "delta", "gamma", "rare"]))
    pipeline.run()


def test_apply_normalization_with_side_input(table: pa.Table, data_dir, tmp_path) -> None:
    """Artifact computed in the same pipeline, used as a side input; rows keep their batch."""
    plan = plan_for(table, key="key")
    reference = normcore.fit(table, features=FEATURES, key="key")
    unseen = chunks(table, 40)[0]
    unseen = unseen.set_column(0, "id", pa.array([f"u{i}" for i in range(40)])).set_column(
        1, "key", pa.array(["unseen"] * 40)
    )
    expected = normcore.Normalizer.from_artifact(reference).transform(pa.concat_tables([table, unseen]))
    pipeline = local_pipeline()
    batches = pipeline | "ReadBatches" >> ReadBatches(open_input(str(data_dir)))
    artifact = batches | "ComputeStats" >> ComputeStats(plan)
    normalized = (
        (batches, pipeline | "CreateUnseen" >> beam.Create(unseen.to_batches()))
        | "Flatten" >> beam.Flatten()
        | "ApplyNormalization" >> ApplyNormalization(artifact)
    )

    def check(elements):
        assert {type(e) for e in elements} == {pa.Table, pa.RecordBatch}  # element kinds kept
        got = pa.concat_tables([pa.Table.from_batches([e]) if isinstance(e, pa.RecordBatch) else e
                                for e in elements]).sort_by("id")
        want = expected.sort_by("id")
        assert got.num_rows == want.num_rows
        for name in FEATURES:  # the artifact differs from the reference's by a few ulps
            np.testing.assert_allclose(got.column(name).to_numpy(zero_copy_only=False),
                                       want.column(name).to_numpy(zero_copy_only=False),
                                       rtol=1e-12, atol=1e-12, equal_nan=True)
            assert got.column(name).is_null().equals(want.column(name).is_null())
        for name in ("id", "key", "flag"):
            assert got.column(name).equals(want.column(name))

    assert_that(normalized, check)
    schema = BatchNormalizer(reference).output_schema(table.schema)
    _ = normalized | "WriteNormalized" >> WriteNormalized(str(tmp_path / "out"), schema)
    result = pipeline.run()
    assert ds.dataset(tmp_path / "out").count_rows() == table.num_rows + 40
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]}
    assert counters["rows_normalized"] == table.num_rows + 40
    assert counters["unseen_key_rows"] == 40
    assert counters["null_key_rows"] == table.column("key").null_count
    assert counters["rows_read"] == table.num_rows
    assert counters["rows_written"] == table.num_rows + 40
