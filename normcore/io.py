"""Inputs and outputs shared by every engine: opening data, streaming it, writing Parquet.

Inputs are a Parquet file, a directory of Parquet files (files whose names start
with ``.`` or ``_`` are ignored, as Spark and Hadoop write them), or a CSV file, given
as a local path, a ``file://`` URL, or a URL of a file system :mod:`pyarrow.fs` knows
(``s3://``, ``gs://``, ``hdfs://``, ``abfs://``), read through it.
Every engine resolves its input here first, so a missing file or column is reported
the same way, before any engine starts.

Where outputs go, and how they are protected, is :mod:`normcore.paths`.

Parquet is read with :class:`pyarrow.parquet.ParquetFile` (row groups, columns, page
checksums); :mod:`pyarrow.dataset`, whose import loads pandas, is imported only to
read CSV and to hand a whole dataset to a caller that asks for one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from normcore.errors import ConfigError, InputError
from normcore.paths import is_url, local_path

if TYPE_CHECKING:
    import pyarrow.dataset as ds

#: Names of CSV files (any other input file is read as Parquet).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")

#: Largest fragment (:meth:`InputSource.fragments` of a parallel read), in compressed bytes
#: of Parquet row groups (a larger row group is a fragment alone).
FRAGMENT_BYTES = 32 * 1024 * 1024

T = TypeVar("T")
S = TypeVar("S")

#: Parquet files normcore writes carry a CRC32 checksum on every page, and every page it
#: reads is verified against its checksum when it has one.
PARQUET_WRITE_OPTIONS = {"write_page_checksum": True}


@dataclass(frozen=True)
class Fragment:
    """A share of an input read as one unit of work: some row groups of one Parquet file
    (``row_groups``), or a whole file (None: a CSV file). ``size`` is its compressed bytes
    (a CSV file's size) and ``rows`` its row count (None for CSV)."""

    path: str
    row_groups: tuple[int, ...] | None
    size: int
    rows: int | None


@dataclass(frozen=True)
class InputSource:
    """A resolved input: its path (as the user gave it), format, files, Arrow schema, and the
    file system holding the files (None: local files; empty ``files``: the engine reads
    ``path`` with its own readers, as Spark does a URL)."""

    path: str
    format: str
    files: tuple[str, ...]
    schema: pa.Schema
    filesystem: pafs.FileSystem | None = None

    @property
    def local(self) -> bool:
        """Whether the files are local paths (every engine's process can open them)."""
        return self.filesystem is None and bool(self.files)

    def dataset(self) -> ds.Dataset:
        """A :class:`pyarrow.dataset.Dataset` over the files (Parquet pages verified)."""
        import pyarrow.dataset as ds

        return ds.dataset(list(self.files), format=self.file_format(), schema=self.schema, filesystem=self.filesystem)

    def file_format(self) -> ds.FileFormat | str:
        """The files' format for :func:`pyarrow.dataset.dataset` (Parquet: with page checksum verification)."""
        import pyarrow.dataset as ds

        if self.format == "parquet":
            options = ds.ParquetFragmentScanOptions(page_checksum_verification=True)
            return ds.ParquetFileFormat(default_fragment_scan_options=options)
        return self.format

    def count_rows(self) -> int:
        """Row count (Parquet: from footers only; CSV: a scan)."""
        if self.format != "parquet":
            return self.dataset().count_rows()
        return sum(fragment.rows for fragment in self.fragments(FRAGMENT_BYTES))

    def fragments(self, max_bytes: int) -> list[Fragment]:
        """The input cut into :class:`Fragment` objects, in file order: each Parquet file at
        row group boundaries into runs of at most ``max_bytes`` compressed bytes (a larger
        row group is a fragment alone), each CSV file whole. The cut depends on the files
        only, so work split by fragments merges to the same result whoever reads them."""
        found: list[Fragment] = []
        for path in self.files:
            try:
                with self._open(path) as stream:
                    if self.format != "parquet":
                        found.append(Fragment(path, None, stream.size(), None))
                        continue
                    metadata = pq.ParquetFile(stream).metadata
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"cannot read input file '{path}': {_first_line(exc)}") from None
            groups: list[int] = []
            size = rows = 0
            for index in range(metadata.num_row_groups):
                row_group = metadata.row_group(index)
                group_size = sum(row_group.column(c).total_compressed_size for c in range(row_group.num_columns))
                if groups and size + group_size > max_bytes:
                    found.append(Fragment(path, tuple(groups), size, rows))
                    groups, size, rows = [], 0, 0
                groups.append(index)
                size += group_size
                rows += row_group.num_rows
            if groups:
                found.append(Fragment(path, tuple(groups), size, rows))
        return found

    def null_free(self, columns: Sequence[str]) -> frozenset[str]:
        """Those of ``columns`` that hold no null in any file, as the files' Parquet footers
        prove it: every row group records a null count of zero for the column (or its field
        is declared not null). A column missing from a file reads as nulls there; a CSV
        input, or one whose files an engine lists and reads itself (Spark's URL, Beam's
        remote files, which only its workers open), proves nothing (empty set).

        Raises
        ------
        InputError
            A file cannot be read (named in the message).
        """
        if self.format != "parquet" or not self.files or (self.filesystem is None and is_url(self.path)):
            return frozenset()
        free = {name for name in columns if self.schema.get_field_index(name) >= 0}
        for path in self.files:
            if not free:
                break
            try:
                with self._open(path) as stream:
                    metadata = pq.ParquetFile(stream).metadata
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"cannot read input file '{path}': {_first_line(exc)}") from None
            leaves = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
            for name in list(free):
                leaf = leaves.get(name)
                if leaf is None:
                    free.discard(name)
                elif metadata.schema.column(leaf).max_definition_level > 0 and not all(
                    _counts_no_null(metadata.row_group(group).column(leaf)) for group in range(metadata.num_row_groups)
                ):
                    free.discard(name)  # nullable (optional), and some row group does not count zero nulls
        return frozenset(free)

    def _open(self, path: str) -> pa.NativeFile:
        if self.filesystem is None:
            return pa.memory_map(path) if self.format == "parquet" else pa.OSFile(path)
        return self.filesystem.open_input_file(path)

    def read_fragment(
        self, fragment: Fragment, columns: Sequence[str] | None = None, batch_size: int = 131_072
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``fragment``'s record batches, cast to the unified schema, with bounded memory.

        One row group is decoded at a time, on this thread, without pre-buffering, so memory
        grows with ``batch_size`` and the row group size and not with the data (pyarrow's
        dataset scanner, by default, holds about 2 GiB on 20M rows x 8 doubles).

        Raises
        ------
        InputError
            The file cannot be read (named in the message).
        """
        selected = list(columns) if columns is not None else list(self.schema.names)
        try:
            if fragment.row_groups is None:
                yield from self._read_csv(fragment.path, selected, batch_size)
                return
            with self._open(fragment.path) as stream:
                reader = pq.ParquetFile(stream, pre_buffer=False, page_checksum_verification=True)
                present = [name for name in selected if reader.schema_arrow.get_field_index(name) >= 0]
                target = pa.schema([self.schema.field(name) for name in selected])
                for batch in reader.iter_batches(
                    batch_size, row_groups=list(fragment.row_groups), columns=present, use_threads=False
                ):
                    yield conform_batch(batch, target)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read input file '{fragment.path}': {_first_line(exc)}") from None

    def _read_csv(self, path: str, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        import pyarrow.dataset as ds

        dataset = ds.dataset(path, format="csv", schema=self.schema, filesystem=self.filesystem)
        yield from dataset.to_batches(
            columns=columns, batch_size=batch_size, batch_readahead=1, fragment_readahead=1, use_threads=False
        )

    def map_fragments(
        self,
        fold: Callable[[Iterator[pa.RecordBatch]], T],
        columns: Sequence[str] | None,
        batch_size: int,
        workers: int,
    ) -> list[T]:
        """``fold`` of each fragment's batches (:meth:`read_fragment`), on ``workers`` threads
        (Arrow's readers and normcore's kernels release the GIL); the results in fragment
        order, so merging them in that order does not depend on ``workers``."""

        def fold_one(fragment: Fragment) -> T:
            return fold(self.read_fragment(fragment, columns, batch_size))

        return map_in_threads(fold_one, self.fragments(FRAGMENT_BYTES), workers)


def _counts_no_null(chunk: pq.ColumnChunkMetaData) -> bool:
    statistics = chunk.statistics
    return statistics is not None and statistics.has_null_count and statistics.null_count == 0


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` as ``schema``: columns by name in its order, cast to its types (an ``int32``
    file in an ``int64`` dataset), and all-null columns for those the file lacks."""
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        column = batch.column(index)
        arrays.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def float64_features(schema: pa.Schema, features: Sequence[str], null_free: Collection[str] = ()) -> pa.Schema:
    """``schema`` with each of ``features`` as float64 (same position and name): the schema
    of a normalized output, on every engine. A feature keeps its nullability, except that
    those in ``null_free`` (:meth:`InputSource.null_free`) are declared not null: Parquet
    then stores them without definition levels, which writing and reading skip."""
    for name in features:
        index = schema.get_field_index(name)
        field = schema.field(index).with_type(pa.float64())
        schema = schema.set(index, field.with_nullable(False) if name in null_free else field)
    return schema


def relabel(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch | pa.Table:
    """``batch`` under ``schema``, which has its column names and types and may declare more
    of them not null (:func:`float64_features`); no data is copied.

    Raises
    ------
    InputError
        A column declared not null holds nulls: the footers of the input's files said it
        had none (named in the message).
    """
    if batch.schema.equals(schema):
        return batch
    for field, column in zip(schema, batch.columns, strict=True):
        if not field.nullable and column.null_count:
            raise InputError(
                f"column '{field.name}' holds {column.null_count} null(s) where the Parquet footers of the "
                "input counted none: the input files are inconsistent"
            )
    kind = pa.RecordBatch if isinstance(batch, pa.RecordBatch) else pa.Table
    return kind.from_arrays(batch.columns, schema=schema)


def require_rows(rows: int, source: str | None) -> None:
    """Refuse an input with no rows (bad input on every command and engine).

    Raises
    ------
    InputError
        Naming ``source``.
    """
    if rows == 0:
        raise InputError(f"input '{source}' has no rows" if source else "input has no rows")


def open_input(path: str | None) -> InputSource:
    """Resolve ``path`` into an :class:`InputSource` (local files as absolute paths, so an
    engine running elsewhere, as Spark's JVM with its own working directory, finds them).

    Parameters
    ----------
    path : str
        A Parquet file, a directory of Parquet files, or a CSV file (by extension): a
        local path, a ``file://`` URL, or a remote URL read through :mod:`pyarrow.fs`.

    Raises
    ------
    InputError
        The path does not exist, holds no data file, or a file is unreadable; a URL
        whose file system cannot be reached (the message names the URL).
    """
    if not path:
        raise ConfigError("no input given: pass INPUT or set 'input' in the config")
    if is_url(path):
        return _open_remote(path)
    location = Path(os.path.abspath(os.path.expanduser(local_path(path))))
    if not location.exists():
        raise InputError(f"input '{path}' does not exist")
    if location.is_dir():
        files = sorted(
            str(p)
            for p in location.rglob("*")
            if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(location).parts)
        )
        if not files:
            raise InputError(f"input directory '{path}' holds no data files")
    else:
        files = [str(location)]
    fmt = _format_of(files)
    return InputSource(str(path), fmt, tuple(files), _unified_schema(files, fmt))


def _format_of(files: Sequence[str]) -> str:
    """``csv`` when every file is a CSV file (by extension), else ``parquet``."""
    return "csv" if all(f.endswith(CSV_SUFFIXES) for f in files) else "parquet"


def _open_remote(url: str) -> InputSource:
    """:func:`open_input` of a URL, through the :mod:`pyarrow.fs` file system of its scheme."""
    try:
        filesystem, root = _filesystem(url)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"input '{url}' does not exist")
        if info.type == pafs.FileType.Directory:
            found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
            files = sorted(
                entry.path
                for entry in found
                if entry.type == pafs.FileType.File
                and not any(part.startswith((".", "_")) for part in entry.path[len(root) :].split("/"))
            )
            if not files:
                raise InputError(f"input directory '{url}' holds no data files")
        else:
            files = [root]
    except (pa.ArrowException, OSError, ValueError, ImportError) as exc:
        raise InputError(f"cannot open input '{url}': {_first_line(exc)}") from None
    fmt = _format_of(files)
    return InputSource(url, fmt, tuple(files), _unified_schema(files, fmt, filesystem), filesystem)


def _filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """The file system of ``url`` and the path in it: Arrow's own (``s3``, ``gs``, ``hdfs``,
    ``abfs``), else fsspec's for the schemes it knows (``memory``, ``az``, ``http``, ...)."""
    try:
        return pafs.FileSystem.from_uri(url)
    except pa.ArrowInvalid:
        import fsspec

        if url.split("://", 1)[0] not in fsspec.available_protocols():
            raise
        filesystem, path = fsspec.core.url_to_fs(url)
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path


def _unified_schema(files: Sequence[str], fmt: str, filesystem: pafs.FileSystem | None = None) -> pa.Schema:
    """One schema for every file: types are promoted (``int32`` + ``int64`` -> ``int64``,
    ``int64`` + ``double`` -> ``double``); files that cannot be reconciled are named."""
    schemas = []
    for file in files:
        try:
            if fmt == "parquet":
                schemas.append(pq.read_schema(file, filesystem=filesystem))
            else:
                import pyarrow.dataset as ds

                schemas.append(ds.dataset(file, format=fmt, filesystem=filesystem).schema)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read '{file}' as {fmt}: {_first_line(exc)}") from None
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except pa.ArrowException:
        pass
    first = schemas[0]
    for file, schema in zip(files[1:], schemas[1:], strict=True):
        try:
            pa.unify_schemas([first, schema], promote_options="permissive")
        except pa.ArrowException as exc:
            raise InputError(f"'{file}' does not match the schema of '{files[0]}': {_first_line(exc)}") from None
    raise InputError(f"the files of '{Path(files[0]).parent}' have schemas that cannot be reconciled")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def map_in_threads(function: Callable[[S], T], items: Sequence[S], workers: int) -> list[T]:
    """``function`` of each of ``items`` on at most ``workers`` threads (on this one for a
    single worker or item); the results in the order of ``items``."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(function, items))


#: Bytes of a column's first batch that :func:`compression_pays` compresses to decide.
CODEC_SAMPLE_BYTES = 64 * 1024
#: Smallest saving (compressed / raw at most 1 - this) for which a column is compressed.
CODEC_MIN_SAVING = 0.1


def compression_pays(column: pa.Array) -> bool:
    """Whether Snappy saves at least :data:`CODEC_MIN_SAVING` of the first
    :data:`CODEC_SAMPLE_BYTES` of a fixed-width ``column``'s values (its nulls' slots included).

    Normalized floats of continuous data hold near-random mantissas that Snappy cannot
    shrink, and trying costs a tenth of writing them; a feature of few distinct values (a
    z-scored 0 / 1 flag) shrinks several times over.
    """
    values = column.buffers()[1]
    width = column.type.byte_width
    start = column.offset * width
    sample = values[start : start + min(CODEC_SAMPLE_BYTES, len(column) * width)]
    if sample.size == 0:
        return True
    return len(pa.compress(sample, "snappy", asbytes=True)) <= (1 - CODEC_MIN_SAVING) * sample.size


class RollingParquetWriter:
    """Writes batches to ``PREFIX-00000.parquet``, ``PREFIX-00001.parquet``, ... in ``directory``.

    A new file starts once the current one holds ``rows_per_file`` rows, so output
    files stay a manageable size and row order is preserved across them.
    ``dictionary_columns`` lists the columns worth dictionary encoding (default:
    none); normalized floats are all distinct, and trying a dictionary on them
    makes writing about 8x slower. Pages are Snappy-compressed, except in a file's
    ``sampled_columns`` (fixed-width) where the file's first batch shows that
    compression does not pay (:func:`compression_pays`). Batches are written under
    ``schema`` (:func:`relabel`: it may declare columns not null that a batch does not).
    """

    def __init__(
        self,
        directory: str | Path,
        schema: pa.Schema,
        rows_per_file: int = 2_000_000,
        dictionary_columns: Sequence[str] = (),
        prefix: str = "part",
        sampled_columns: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.dictionary_columns = list(dictionary_columns)
        self.sampled_columns = list(sampled_columns)
        self.prefix = prefix
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_file = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append ``batch`` (split across files as needed)."""
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None or self._rows_in_file >= self.rows_per_file:
                self._open_next(batch.slice(offset))
            take = min(batch.num_rows - offset, self.rows_per_file - self._rows_in_file)
            self._writer.write_batch(relabel(batch.slice(offset, take), self.schema))
            offset += take
            self._rows_in_file += take

    def _open_next(self, first: pa.RecordBatch | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.directory / f"{self.prefix}-{len(self.files):05d}.parquet"
        compression: dict[str, str] = {name: "snappy" for name in self.schema.names}
        for name in self.sampled_columns if first is not None else ():
            if not compression_pays(first.column(name)):
                compression[name] = "none"
        self._writer = pq.ParquetWriter(
            path,
            self.schema,
            use_dictionary=self.dictionary_columns or False,
            compression=compression,
            **PARQUET_WRITE_OPTIONS,
        )
        self.files.append(path)
        self._rows_in_file = 0

    def close(self) -> None:
        """Close the current file (an empty input still yields one file with the schema)."""
        if self._writer is None:
            self._open_next()
        self._writer.close()
