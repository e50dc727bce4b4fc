"""Fit on Spark: one normcore state per partition, merged on the executors; only states travel.

Each task folds its rows into :class:`~normcore.stats.StatsAccumulator` objects with the
shared combiner (``create_accumulator`` / ``add_batch``), one per key value with a key,
and emits them as JSON (:meth:`StatsAccumulator.to_dict`); the states are merged with
``merge_accumulators``. Nothing here computes a statistic.

Two sources of rows:

* :func:`file_states` (the engine, on a classic session over local or shared paths):
  each task reads its share of the input files (Parquet row groups, or whole CSV files)
  with Arrow, as the local engine does, so the rows never go through the JVM: several
  times faster than Spark's row-to-Arrow conversion for ``mapInArrow``, and faster than
  one native aggregate (BENCHMARKS.md). The states meet in a ``treeAggregate`` (no key)
  or ``reduceByKey`` (:func:`merge_states`).
* :func:`frame_states` (:func:`compute_stats`): any DataFrame, through ``mapInArrow``,
  merged per key value by ``groupBy(key).applyInArrow`` (:func:`merge_frame_states`):
  DataFrame operations only, so it runs on Spark Connect, and on inputs that only Spark's
  readers reach (``s3a://``, ``hdfs://``).

Either way the merge follows the partitions' order and the key values' sorted order, so
the same input gives the same artifact.

A task that fails and is retried recomputes its state from its input; only the
output of the successful attempt reaches the merge, so no row counts twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import RDD, TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from normcore.artifact import Artifact
from normcore.config import JobConfig
from normcore.fitting import fit_in_passes
from normcore.io import Fragment, InputSource
from normcore.plan import resolve_plan
from normcore.stats import (
    ColumnRequest,
    FeatureStatsCombiner,
    KeyedStats,
    StatsAccumulator,
    fold_batches,
    merge_keyed,
)
from pipelines.spark.frames import quote

#: Schema of the state rows ``mapInArrow`` emits: key value (null without a key), the
#: partition that folded it (the merge order) and the state as JSON ...
STATE_SCHEMA = "key string, part int, state string"
#: ... and of the merged states ``applyInArrow`` returns, one per key value.
MERGED_SCHEMA = "key string, state string"
#: Largest share of the input one task reads, and the cost of opening a file, in bytes
#: (Spark's ``spark.sql.files.maxPartitionBytes`` / ``openCostInBytes`` defaults).
MAX_SPLIT_BYTES = 128 * 1024 * 1024
OPEN_COST_BYTES = 4 * 1024 * 1024
#: Rows per Arrow batch read by a task.
BATCH_ROWS = 131_072


def fold_encoded(
    batches: Iterable[pa.RecordBatch], requests: Sequence[ColumnRequest], key: str | None
) -> Iterator[tuple[str | None, str]]:
    """Fold record batches into encoded states: ``(None, state)`` without a key, else
    ``(key value, state)`` per key value seen (``None`` for rows with a null key)."""
    combiner = FeatureStatsCombiner(requests)
    accumulator, keyed = fold_batches(combiner, batches, key)
    if keyed is None:
        yield None, combiner.compact(accumulator).to_json()
        return
    for value, state in keyed.items():
        yield value, combiner.compact(state).to_json()


def _merge_encoded(requests: Sequence[ColumnRequest], left: str, right: str) -> str:
    combiner = FeatureStatsCombiner(requests)
    merged = combiner.merge_accumulators([StatsAccumulator.from_json(left), StatsAccumulator.from_json(right)])
    return combiner.compact(merged).to_json()


def merge_states(
    states: RDD, requests: Sequence[ColumnRequest], key: str | None
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """Merge ``(key, state)`` pairs into the global accumulator (and the keyed ones).

    Without a key the states meet in a ``treeAggregate`` (depth 2: executors merge groups
    of partitions, the driver the groups); with a key, in ``reduceByKey``.

    Returns
    -------
    accumulator : StatsAccumulator
        Statistics over all rows.
    keyed : dict or None
        Per key value (``None``: rows with a null key), or None without a key.
    """
    combiner = FeatureStatsCombiner(requests)
    merge = partial(_merge_encoded, tuple(requests))
    if key is None:
        empty = StatsAccumulator.to_json(combiner.create_accumulator())
        return StatsAccumulator.from_json(states.values().treeAggregate(empty, merge, merge, depth=2)), None
    found = dict(states.reduceByKey(merge).collect())
    keyed = {value: StatsAccumulator.from_json(found[value]) for value in sorted(found, key=_null_first)}
    return merge_keyed(combiner, keyed), keyed


# ------------------------------------------------------------------- file input


def file_tasks(source: InputSource, parallelism: int) -> list[list[Fragment]]:
    """Cut ``source`` into tasks as Spark sizes file partitions.

    Split size: ``min(MAX_SPLIT_BYTES, max(OPEN_COST_BYTES, total / parallelism))``,
    total counting each file's size plus the open cost. Parquet files are cut at row
    group boundaries (:meth:`~normcore.io.InputSource.fragments`); CSV files are read
    whole. Consecutive small fragments share a task.
    """
    sizes = [Path(path).stat().st_size for path in source.files]
    total = sum(sizes) + OPEN_COST_BYTES * len(sizes)
    max_bytes = min(MAX_SPLIT_BYTES, max(OPEN_COST_BYTES, total // max(parallelism, 1)))
    tasks: list[list[Fragment]] = [[]]
    task_bytes = 0
    for fragment in source.fragments(max_bytes):
        cost = fragment.size + OPEN_COST_BYTES
        if tasks[-1] and task_bytes + cost > max_bytes:
            tasks.append([])
            task_bytes = 0
        tasks[-1].append(fragment)
        task_bytes += cost
    return tasks


def _columns(requests: Sequence[ColumnRequest], key: str | None) -> list[str]:
    return [r.name for r in requests] + ([key] if key else [])


def _fold_tasks(
    requests: Sequence[ColumnRequest], key: str | None, source: InputSource, tasks: Iterable[list[Fragment]]
) -> Iterator[tuple[str | None, str]]:
    columns = _columns(requests, key)
    for task in tasks:
        batches = (batch for fragment in task for batch in source.read_fragment(fragment, columns, BATCH_ROWS))
        yield from fold_encoded(batches, requests, key)


def file_states(spark: SparkSession, source: InputSource, requests: Sequence[ColumnRequest], key: str | None) -> RDD:
    """``(key, state)`` pairs of ``source``, one task per share of its files (see :func:`file_tasks`)."""
    tasks = file_tasks(source, spark.sparkContext.defaultParallelism)
    fold = partial(_fold_tasks, tuple(requests), key, source)
    return spark.sparkContext.parallelize(tasks, len(tasks)).mapPartitions(fold)


# -------------------------------------------------------------- DataFrame input


def _fold_arrow(
    requests: Sequence[ColumnRequest], key: str | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    states = list(fold_encoded(batches, requests, key))
    part = TaskContext.get().partitionId()
    yield pa.RecordBatch.from_arrays(
        [
            pa.array([k for k, _ in states], pa.string()),
            pa.array([part] * len(states), pa.int32()),
            pa.array([s for _, s in states], pa.string()),
        ],
        names=["key", "part", "state"],
    )


def frame_states(frame: DataFrame, requests: Sequence[ColumnRequest], key: str | None) -> DataFrame:
    """Rows ``(key, part, state)`` of ``frame`` (:data:`STATE_SCHEMA`): ``mapInArrow`` over
    the requested columns, one state per partition and key value."""
    columns = [frame[quote(name)] for name in _columns(requests, key)]
    return frame.select(*columns).mapInArrow(partial(_fold_arrow, tuple(requests), key), STATE_SCHEMA)


def _merge_group(requests: Sequence[ColumnRequest], states: pa.Table) -> pa.Table:
    """The states of one key value (an ``applyInArrow`` group) merged in partition order."""
    combiner = FeatureStatsCombiner(requests)
    order = pc.sort_indices(states["part"]).to_pylist()
    encoded = states["state"].to_pylist()
    merged = combiner.merge_accumulators([StatsAccumulator.from_json(encoded[i]) for i in order])
    return pa.table(
        {"key": pa.array([states["key"][0].as_py()], pa.string()), "state": [combiner.compact(merged).to_json()]}
    )


def _group_merger(requests: Sequence[ColumnRequest]) -> Callable[[pa.Table], pa.Table]:
    """:func:`_merge_group` of ``requests`` as ``applyInArrow`` takes it (its type hints say
    which of its forms it is)."""

    def merge_group(states: pa.Table) -> pa.Table:
        return _merge_group(requests, states)

    return merge_group


def merge_frame_states(
    states: DataFrame, requests: Sequence[ColumnRequest], key: str | None
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """Merge :func:`frame_states` on the executors, one ``applyInArrow`` group per key value,
    and the key values' states on the driver (see :func:`merge_states` for the result)."""
    combiner = FeatureStatsCombiner(requests)
    merged = states.groupBy("key").applyInArrow(_group_merger(tuple(requests)), MERGED_SCHEMA).toArrow()
    found = dict(zip(merged["key"].to_pylist(), merged["state"].to_pylist(), strict=True))
    keyed = {value: StatsAccumulator.from_json(found[value]) for value in sorted(found, key=_null_first)}
    if key is None:
        return keyed.get(None, combiner.create_accumulator()), None
    return merge_keyed(combiner, keyed), keyed


def _null_first(value: str | None) -> tuple[bool, str]:
    return (value is not None, value or "")


def compute_stats(
    frame: DataFrame, requests: Sequence[ColumnRequest], key: str | None = None
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """One pass of statistics over ``frame`` (see :func:`merge_states` for the result);
    DataFrame operations only (Spark Connect works)."""
    return merge_frame_states(frame_states(frame, requests, key), requests, key)


def fit_frame(frame: DataFrame, job: JobConfig, source: str = "<DataFrame>") -> Artifact:
    """Fit ``job`` (features, methods, ddof, key) on a DataFrame and return the artifact.

    Columns are selected and checked as for a file input, against ``frame``'s schema
    seen as Arrow; ``source`` names the data in messages and in the artifact.
    """
    zone = frame.sparkSession.conf.get("spark.sql.session.timeZone")
    plan = resolve_plan(job, to_arrow_schema(frame.schema, timezone=zone), source)
    return fit_in_passes(plan, partial(compute_stats, frame, key=plan.key), engine="spark", source=source)
