"""Composite PTransforms users import into their own pipelines.

* :class:`ReadBatches`: a normcore input (Parquet or CSV files) as a PCollection of
  ``pyarrow.Table`` (one per Parquet row group), never one dict per row.
* :class:`AccumulateStats`: tables -> merged :class:`~normcore.stats.StatsAccumulator`
  (or, with a key, one ``{key value: accumulator}`` mapping).
* :class:`ComputeStats`: tables -> one :class:`~normcore.artifact.Artifact`.
* :class:`ApplyNormalization`: tables -> normalized tables, the artifact as a side input;
  no shuffle and no re-join: each table is transformed in place, so pass-through columns
  stay in the same batch.
* :class:`WriteNormalized`: tables -> Parquet files that ``pyarrow.dataset`` reads.

Every step is labelled; statistics are only created, folded, merged and compacted by
:class:`~pipelines.beam.combiners.FeatureStatsCombineFn`, fitted by
:func:`normcore.fitting.build_artifact` and applied by
:class:`normcore.apply.BatchNormalizer`.

Metrics (namespace ``normcore``): ``rows_read``, ``rows_normalized``, ``rows_written``,
``unseen_key_rows``, ``null_key_rows`` and, per feature, ``<feature>.null_count``,
``<feature>.nan_count``, ``<feature>.inf_count`` (values left out of the statistics).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from apache_beam.io.filebasedsink import FileBasedSink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from normcore.apply import ApplyCounts, BatchNormalizer
from normcore.artifact import Artifact
from normcore.errors import ConfigError, InputError
from normcore.fitting import build_artifact
from normcore.io import PARQUET_WRITE_OPTIONS, InputSource, relabel
from normcore.keys import key_groups
from normcore.plan import FitPlan
from normcore.stats import ColumnRequest, FeatureStatsCombiner, KeyedStats, StatsAccumulator, merge_keyed
from pipelines.beam import coders  # noqa: F401  (registers the Arrow coder)
from pipelines.beam.combiners import ApplyCountsCombineFn, FeatureStatsCombineFn

#: Namespace of every Beam metric normcore reports.
METRICS_NAMESPACE = "normcore"

#: What :class:`AccumulateStats` emits: one accumulator, or one per key value
#: (``None`` for rows with a null key).
Stats = StatsAccumulator | Mapping[str | None, StatsAccumulator]

ArrowBatch = pa.Table | pa.RecordBatch


def _counted_table(element: ArrowBatch, counter: Any) -> pa.Table:
    """``element`` as a table (Parquet sinks write tables), its rows added to ``counter``."""
    counter.inc(element.num_rows)
    return pa.Table.from_batches([element]) if isinstance(element, pa.RecordBatch) else element


class _ReadCsvFile(beam.DoFn):
    """Reads one CSV file as Arrow tables of ``batch_size`` rows with a fixed schema."""

    def __init__(self, schema: pa.Schema, columns: Sequence[str] | None, batch_size: int) -> None:
        self._schema = schema
        self._columns = list(columns) if columns is not None else None
        self._batch_size = batch_size

    def process(self, path: str) -> Iterator[pa.Table]:
        dataset = ds.dataset(path, format="csv", schema=self._schema)
        try:
            for batch in dataset.to_batches(columns=self._columns, batch_size=self._batch_size):
                if batch.num_rows:
                    yield pa.Table.from_batches([batch])
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read input '{path}': {exc}") from None


class _ListRowGroups(beam.DoFn):
    """Emits ``(path, row group index)`` for every row group of one Parquet file."""

    def process(self, path: str) -> Iterator[tuple[str, int]]:
        with _open_parquet(path) as parquet:
            for index in range(parquet.num_row_groups):
                yield path, index


class _ReadRowGroup(beam.DoFn):
    """Reads one Parquet row group as an Arrow table, its pages verified against their checksums."""

    def __init__(self, columns: Sequence[str] | None) -> None:
        self._columns = list(columns) if columns is not None else None

    def process(self, element: tuple[str, int]) -> Iterator[pa.Table]:
        path, index = element
        with _open_parquet(path) as parquet:
            try:
                yield parquet.read_row_group(index, columns=self._columns)
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"cannot read input '{path}': {exc}") from None


@contextlib.contextmanager
def _open_parquet(path: str) -> Iterator[pq.ParquetFile]:
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            yield pq.ParquetFile(stream, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read input '{path}' as parquet: {exc}") from None


def _conform(table: pa.Table, schema: pa.Schema, counter: Any) -> pa.Table:
    """``table`` with ``schema``'s columns, order and types (a no-op when they agree)."""
    if not table.schema.equals(schema, check_metadata=False):
        table = table.select(schema.names).cast(schema)
    counter.inc(table.num_rows)
    return table


class ReadBatches(beam.PTransform):
    """Read a resolved normcore input as a PCollection of ``pyarrow.Table``.

    Parameters
    ----------
    source : normcore.io.InputSource
        Files, format and schema (``normcore.io.open_input``).
    columns : sequence of str, optional
        Columns to read (a fit reads only the features and the key); default all.
    batch_size : int, default 131072
        Rows per table for CSV input (Parquet yields one table per row group).

    Notes
    -----
    Parquet files (exactly the files of ``source``, the files the local engine reads) are
    listed by row group, the row groups spread over the workers (``Reshuffle``) and read
    through Beam's file systems with page checksum verification. Every table is cast to
    the input schema, so files that differ in integer width still write one output
    schema. Counts ``rows_read``.
    """

    def __init__(self, source: InputSource, columns: Sequence[str] | None = None, batch_size: int = 131_072) -> None:
        super().__init__()
        self._source = source
        self._columns = list(columns) if columns is not None else None
        self._batch_size = batch_size

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        schema = self._source.schema
        if self._columns is not None:
            schema = pa.schema([schema.field(name) for name in self._columns])
        files = pbegin | "ListFiles" >> beam.Create(list(self._source.files), reshuffle=False)
        if self._source.format == "parquet":
            tables = (
                files
                | "ListRowGroups" >> beam.ParDo(_ListRowGroups())
                | "SpreadRowGroups" >> beam.Reshuffle()
                | "ReadRowGroups" >> beam.ParDo(_ReadRowGroup(self._columns)).with_output_types(pa.Table)
            )
        else:
            read_csv = _ReadCsvFile(self._source.schema, self._columns, self._batch_size)
            tables = files | "ReadCsv" >> beam.ParDo(read_csv).with_output_types(pa.Table)
        rows_read = Metrics.counter(METRICS_NAMESPACE, "rows_read")
        return tables | "ConformSchema" >> beam.Map(_conform, schema, rows_read).with_output_types(pa.Table)


class _SplitByKey(beam.DoFn):
    """Emits ``(key value or None, (key value, rows of that key))`` for every key in a table
    (the key travels with the rows: a per-key search evaluates grids of its own)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, table: ArrowBatch) -> Iterator[tuple[str | None, tuple[str | None, ArrowBatch]]]:
        index = table.schema.get_field_index(self._key)
        if index < 0:
            raise InputError(
                f"key column '{self._key}' is missing from a batch; it has: {', '.join(table.schema.names)}"
            )
        for value, rows in key_groups(table.column(index)):
            yield value, (value, table.take(pa.array(rows)))


class AccumulateStats(beam.PTransform):
    """Tables -> merged statistics of one pass over the data (one element).

    Parameters
    ----------
    requests : sequence of ColumnRequest
        What to gather for each column (``FitPlan.requests()`` for the first pass).
    key : str, optional
        Gather statistics per value of this column too.
    fanout : int, optional
        Intermediate combining for wide or skewed data: ``CombineGlobally.with_fanout``
        without a key, ``CombinePerKey.with_hot_key_fanout`` with one.

    Notes
    -----
    Without a key the output is one :class:`~normcore.stats.StatsAccumulator`. With a
    key it is one ``{key value: accumulator}`` dict: key values are named by
    :mod:`normcore.keys` (as on every engine), rows with a null key go to the ``None``
    entry, which counts only towards the global statistics.
    """

    def __init__(self, requests: Sequence[ColumnRequest], key: str | None = None, fanout: int | None = None) -> None:
        super().__init__()
        self._requests = tuple(requests)
        self._key = key
        self._fanout = fanout

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        combine_fn = FeatureStatsCombineFn(self._requests)
        if self._key is None:
            combine = beam.CombineGlobally(combine_fn)
            if self._fanout:
                combine = combine.with_fanout(self._fanout)
            return tables | "CombineStats" >> combine
        per_key = beam.CombinePerKey(combine_fn)
        if self._fanout:
            per_key = per_key.with_hot_key_fanout(self._fanout)
        optional_key = beam.typehints.Optional[str]
        return (
            tables
            | "SplitByKey"
            >> beam.ParDo(_SplitByKey(self._key)).with_output_types(
                beam.typehints.KV[optional_key, beam.typehints.Tuple[optional_key, tables.element_type]]
            )
            | "CombineStatsPerKey" >> per_key
            | "CollectKeys" >> beam.combiners.ToDict()
        )


def split_stats(
    requests: Sequence[ColumnRequest], key: str | None, stats: Stats
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """``(global accumulator, per-key accumulators or None)`` of an :class:`AccumulateStats`
    output; with a key, the global accumulator is the merge of every key's (null key included)."""
    if key is None:
        return stats, None
    keyed = dict(stats)
    return merge_keyed(FeatureStatsCombiner(requests), keyed), keyed


def report_missing(stats: Stats, requests: Sequence[ColumnRequest], key: str | None) -> None:
    """Set the ``<feature>.null_count`` / ``.nan_count`` / ``.inf_count`` counters (a step of
    the pipeline: Beam metrics count inside steps only)."""
    accumulator, _ = split_stats(requests, key, stats)
    for name, column in accumulator.columns.items():
        for kind in ("null_count", "nan_count", "inf_count"):
            Metrics.counter(METRICS_NAMESPACE, f"{name}.{kind}").inc(getattr(column.moments, kind))


def _build_artifact(stats: Stats, plan: FitPlan, source: str | None) -> Artifact:
    accumulator, keyed = split_stats(plan.requests(), plan.key, stats)
    return build_artifact(plan, accumulator, keyed, engine="beam", source=source)


class ComputeStats(beam.PTransform):
    """Tables -> one fitted :class:`~normcore.artifact.Artifact` (per key with ``plan.key``).

    Parameters
    ----------
    plan : normcore.plan.FitPlan
        Features, methods, ddof and key (``normcore.plan.resolve_plan``). Its methods must
        fit in one pass (a ``power`` feature searches its lambda over several passes:
        fit it with :func:`pipelines.beam.engine.fit`).
    fanout : int, optional
        See :class:`AccumulateStats`.
    source : str, optional
        Input path recorded in the artifact.

    Raises
    ------
    ConfigError
        The plan needs more than one pass.

    Examples
    --------
    >>> artifact = (p | ReadBatches(source, plan.columns())            # doctest: +SKIP
    ...               | "ComputeStats" >> ComputeStats(plan))
    """

    def __init__(self, plan: FitPlan, fanout: int | None = None, source: str | None = None) -> None:
        super().__init__()
        if not plan.single_pass:
            raise ConfigError(
                "ComputeStats fits in one pass; these features search a parameter over several passes: "
                + ", ".join(plan.multi_pass_features())
            )
        self._plan = plan
        self._fanout = fanout
        self._source = source

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        requests, key = self._plan.requests(), self._plan.key
        stats = tables | "AccumulateStats" >> AccumulateStats(requests, key, self._fanout)
        _ = stats | "ReportMissing" >> beam.Map(report_missing, requests, key)
        return stats | "BuildArtifact" >> beam.Map(_build_artifact, self._plan, self._source)


#: Tag of :class:`_NormalizeBatches`' side output of per-batch :class:`ApplyCounts`.
COUNTS_TAG = "counts"


class _NormalizeBatches(beam.DoFn):
    """Transforms each table / record batch with a :class:`BatchNormalizer` (built once per artifact)."""

    def __init__(self, features: Sequence[str] | None, inverse: bool) -> None:
        self._features = list(features) if features is not None else None
        self._inverse = inverse
        self._normalizer: BatchNormalizer | None = None
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows_normalized")
        self._unseen = Metrics.counter(METRICS_NAMESPACE, "unseen_key_rows")
        self._null_keys = Metrics.counter(METRICS_NAMESPACE, "null_key_rows")

    def _normalizer_for(self, artifact: Artifact) -> BatchNormalizer:
        if self._normalizer is None or self._normalizer.artifact.checksum != artifact.checksum:
            self._normalizer = BatchNormalizer(artifact, self._features, self._inverse)
        return self._normalizer

    def process(self, element: ArrowBatch, artifact: Artifact) -> Iterator[Any]:
        normalizer = self._normalizer_for(artifact)
        counts = ApplyCounts()
        if isinstance(element, pa.RecordBatch):
            result, counts = normalizer.transform_batch(element)
        else:
            batches = []
            for batch in element.to_batches():
                normalized, batch_counts = normalizer.transform_batch(batch)
                batches.append(normalized)
                counts.merge(batch_counts)
            result = pa.Table.from_batches(batches, schema=normalizer.output_schema(element.schema))
        self._rows.inc(counts.rows)
        self._unseen.inc(counts.unseen_key_rows)
        self._null_keys.inc(counts.null_key_rows)
        yield result
        yield beam.pvalue.TaggedOutput(COUNTS_TAG, counts)


class ApplyNormalization(beam.PTransform):
    """Tables (or record batches) -> the same elements with features normalized.

    Parameters
    ----------
    artifact : Artifact or PCollection of one Artifact
        Fitted statistics: a constant, or the output of :class:`ComputeStats` in the
        same pipeline (used as a singleton side input).
    features : sequence of str, optional
        Features to transform; default every feature of the artifact.
    inverse : bool, default False
        Apply the inverse transforms.
    with_counts : bool, default False
        Also return a PCollection holding one merged :class:`normcore.apply.ApplyCounts`
        (rows, unseen and null key rows); the output is then ``(tables, counts)``.

    Notes
    -----
    One ``ParDo`` with no shuffle: each element keeps its rows, their order and its
    pass-through columns; feature columns become float64 under their own names.
    """

    def __init__(
        self,
        artifact: Artifact | beam.PCollection,
        features: Sequence[str] | None = None,
        inverse: bool = False,
        with_counts: bool = False,
    ) -> None:
        super().__init__()
        self._artifact = artifact
        self._features = features
        self._inverse = inverse
        self._with_counts = with_counts

    def expand(self, tables: beam.PCollection) -> beam.PCollection | tuple[beam.PCollection, beam.PCollection]:
        artifact = self._artifact
        if isinstance(artifact, beam.PCollection):
            artifact = beam.pvalue.AsSingleton(artifact)
        normalize = beam.ParDo(_NormalizeBatches(self._features, self._inverse), artifact)
        if tables.element_type in (pa.Table, pa.RecordBatch):
            normalize = normalize.with_output_types(tables.element_type)  # keeps the Arrow coder
        outputs = tables | "Normalize" >> normalize.with_outputs(COUNTS_TAG, main="normalized")
        if not self._with_counts:
            return outputs.normalized
        counts = outputs[COUNTS_TAG] | "MergeCounts" >> beam.CombineGlobally(ApplyCountsCombineFn())
        return outputs.normalized, counts


class ParquetTableSink(FileBasedSink):
    """A Beam file sink writing ``pyarrow.Table`` elements as snappy Parquet files.

    Like Beam's ``WriteToParquetBatched`` (same temporary-file-then-rename protocol), but
    floating-point columns skip dictionary encoding: normalized features almost never
    repeat, and trying a dictionary first doubles the write time.

    Parameters
    ----------
    file_path_prefix : str
        Files are ``<prefix>-SSSSS-of-NNNNN<suffix>``.
    schema : pyarrow.Schema
        Schema of every table.
    file_name_suffix : str, default ".parquet"
    """

    def __init__(self, file_path_prefix: str, schema: pa.Schema, file_name_suffix: str = ".parquet") -> None:
        super().__init__(
            file_path_prefix,
            coder=None,
            file_name_suffix=file_name_suffix,
            mime_type="application/x-parquet",
            compression_type=CompressionTypes.UNCOMPRESSED,  # Parquet compresses its pages itself
        )
        self._schema = schema
        self._dictionary_columns = [f.name for f in schema if not pa.types.is_floating(f.type)]

    def open(self, temp_path: str) -> Any:
        """A ``pyarrow.parquet.ParquetWriter`` over a new temporary file."""
        handle = super().open(temp_path)
        writer = pq.ParquetWriter(
            handle, self._schema, compression="snappy", use_dictionary=self._dictionary_columns, **PARQUET_WRITE_OPTIONS
        )
        return writer, handle

    def write_record(self, writer_and_handle: Any, table: pa.Table) -> None:
        """Append one table (under the sink's schema: :func:`normcore.io.relabel`)."""
        writer_and_handle[0].write_table(relabel(table, self._schema))

    def close(self, writer_and_handle: Any) -> None:
        """Finish the Parquet footer and close the file."""
        writer, handle = writer_and_handle
        writer.close()
        handle.close()


class WriteNormalized(beam.PTransform):
    """Tables (or record batches) -> snappy Parquet files ``part-SSSSS-of-NNNNN.parquet`` under ``directory``.

    Parameters
    ----------
    directory : str
        Output directory (local or any Beam filesystem); ``pyarrow.dataset.dataset``
        reads it once the pipeline has finished.
    schema : pyarrow.Schema
        Schema of every table (``BatchNormalizer.output_schema``).

    Notes
    -----
    Counts ``rows_written``. Beam writes each bundle to a temporary file and renames the
    files into place when the write finishes (:class:`ParquetTableSink`).
    """

    def __init__(self, directory: str, schema: pa.Schema) -> None:
        super().__init__()
        self._directory = directory
        self._schema = schema

    def expand(self, tables: beam.PCollection) -> beam.pvalue.PDone:
        rows_written = Metrics.counter(METRICS_NAMESPACE, "rows_written")
        sink = ParquetTableSink(FileSystems.join(self._directory, "part"), self._schema)
        return (
            tables
            | "CountRowsWritten" >> beam.Map(_counted_table, rows_written).with_output_types(pa.Table)
            | "WriteParquet" >> beam.io.Write(sink)
        )
