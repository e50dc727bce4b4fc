"""The Beam engine behind ``normcore fit|apply|run --engine beam``.

``fit`` runs one pipeline (read -> :class:`~pipelines.beam.transforms.AccumulateStats`)
and builds the artifact in this process with :func:`normcore.fitting.build_artifact`, so
bad input (no rows, a column without a finite value) is reported as a one-line error
exactly as on the local engine. ``apply`` runs read ->
:class:`~pipelines.beam.transforms.ApplyNormalization` ->
:class:`~pipelines.beam.transforms.WriteNormalized` into the staging directory the
caller renames into place. ``run`` (used by ``python -m pipelines.beam.normalize run``)
does both in one pipeline, the artifact reaching the apply step as a side input.

The merged statistics and apply counts come back to this process as a small JSON file
written by the pipeline: in a temporary directory for local runs (and portable runners
in ``LOOPBACK`` mode), under ``--temp_location`` otherwise.

Paths may be Beam file system URLs (``gs://``, ``s3://``, ``hdfs://``): the CLI reads
inputs and artifacts through :func:`open_input` / :func:`read_artifact`, and writes a
remote artifact with :func:`write_artifact` and a remote output in place (no staging:
object stores have no atomic rename) when :func:`is_remote` says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from normcore import io as normcore_io
from normcore.apply import ApplyCounts, BatchNormalizer
from normcore.artifact import Artifact, load_artifact, parse_artifact
from normcore.config import JobConfig
from normcore.errors import ArtifactError, ConfigError, InputError, NormcoreError, error_from_traceback
from normcore.fitting import fit_in_passes
from normcore.io import InputSource, float64_features, require_rows
from normcore.paths import is_url
from normcore.plan import FitPlan
from normcore.stats import ColumnRequest, KeyedStats, StatsAccumulator
from pipelines.beam.options import create_pipeline, pipeline_options, results_are_local
from pipelines.beam.quality import MeasureConformity
from pipelines.beam.transforms import (
    AccumulateStats,
    ApplyNormalization,
    ComputeStats,
    ReadBatches,
    Stats,
    WriteNormalized,
    report_missing,
    split_stats,
)

# ---------------------------------------------------------------- file systems


def is_remote(path: str) -> bool:
    """Whether ``path`` is a Beam filesystem URL (``gs://``, ``s3://``, ...) rather than local."""
    return is_url(path)


def open_input(path: str | None, job: JobConfig | None = None) -> InputSource:
    """Resolve a local input with :func:`normcore.io.open_input`, a remote one with Beam's filesystems
    (``job`` is not needed: Beam's file systems take their options from the environment).

    A remote path is a Parquet file, a glob, or a directory (every file under it whose
    name does not start with ``.`` or ``_``).

    Raises
    ------
    InputError
        Nothing matches, a remote file is not Parquet, or it cannot be read.
    """
    if not path or not is_remote(path):
        return normcore_io.open_input(path)
    pattern = path if any(c in path for c in "*?[") or path.endswith(".parquet") else path.rstrip("/") + "/**"
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # Beam raises its own BeamIOError subclasses per filesystem
        raise InputError(f"cannot list input '{path}': {exc}") from None
    files = sorted(m.path for m in matches if not posixpath.basename(m.path).startswith((".", "_")))
    if not files:
        raise InputError(f"input '{path}' holds no data files")
    if any(not f.endswith(".parquet") for f in files):
        raise InputError(f"input '{path}': remote input must be Parquet files (*.parquet)")
    try:
        with FileSystems.open(files[0]) as stream:
            schema = pq.ParquetFile(stream).schema_arrow
    except Exception as exc:
        raise InputError(f"cannot read input '{files[0]}' as parquet: {exc}") from None
    return InputSource(path, "parquet", tuple(files), schema)


def read_artifact(path: str) -> Artifact:
    """Load and verify an artifact from a local path or a Beam filesystem URL."""
    if not is_remote(path):
        return load_artifact(path)
    try:
        with FileSystems.open(path) as stream:
            document = json.loads(stream.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"artifact '{path}' is not valid JSON ({exc})") from None
    except Exception as exc:
        raise ArtifactError(f"artifact '{path}' cannot be read: {exc}") from None
    return parse_artifact(document, path)


def write_artifact(artifact: Artifact, path: str) -> None:
    """Save ``artifact`` to a local path (atomically) or a Beam filesystem URL."""
    if not is_remote(path):
        artifact.save(path)
        return
    with FileSystems.create(path, mime_type="application/json") as stream:
        stream.write(artifact.to_json().encode("utf-8"))


# ------------------------------------------------------------------- commands


def fit(job: JobConfig, plan: FitPlan, source: InputSource, *, argv: Sequence[str] = ()) -> Artifact:
    """Fit ``plan`` on ``source`` with a Beam pipeline.

    Parameters
    ----------
    job : JobConfig
        ``job.beam`` gives the runner, extra pipeline options and the fanout.
    plan : FitPlan
        Features, methods, ddof and key.
    source : InputSource
        The resolved input.
    argv : sequence of str
        Beam pipeline options from the command line (they override ``job.beam.options``).

    Returns
    -------
    Artifact
        Recorded with ``engine: "beam"``.

    Raises
    ------
    ConfigError
        An unknown pipeline option, or a remote runner without ``--temp_location``.
    InputError
        No rows, or a feature without any finite value.
    """
    options = pipeline_options(job, argv)
    first = plan.requests()

    def gather(requests: Sequence[ColumnRequest]) -> tuple[StatsAccumulator, KeyedStats | None]:
        """One pipeline: one pass over the data for ``requests``."""
        with _results_location(options) as results:
            stats_path = FileSystems.join(results, "stats.json")
            pipeline = create_pipeline(options)
            columns = [r.name for r in requests] + ([plan.key] if plan.key else [])
            stats = (
                pipeline
                | "ReadBatches" >> ReadBatches(source, columns, job.local.batch_size)
                | "AccumulateStats" >> AccumulateStats(requests, plan.key, job.beam.hot_key_fanout)
            )
            if requests[0] is first[0]:  # counted once, in the first pass
                _ = stats | "ReportMissing" >> beam.Map(report_missing, requests, plan.key)
            _ = stats | "WriteStats" >> beam.Map(write_result, stats_path, encode_stats)
            run_pipeline(pipeline)
            return split_stats(requests, plan.key, decode_stats(_read_result(stats_path)))

    return fit_in_passes(plan, gather, engine="beam", source=source.path)


def apply(
    job: JobConfig, artifact: Artifact, source: InputSource, output_dir: Path,
    *, inverse: bool = False, argv: Sequence[str] = (),
) -> ApplyCounts:  # fmt: skip
    """Normalize (or invert) ``source`` into Parquet files under ``output_dir``.

    Parameters
    ----------
    job : JobConfig
        ``job.beam`` gives the runner and extra pipeline options.
    artifact : Artifact
        Fitted statistics (a constant of the pipeline).
    source : InputSource
        The resolved input.
    output_dir : Path or str
        Empty directory that receives ``part-SSSSS-of-NNNNN.parquet`` files.
    inverse : bool, default False
        Apply the inverse transforms.
    argv : sequence of str
        Beam pipeline options from the command line.

    Returns
    -------
    ApplyCounts
        Rows written and rows whose key had no statistics of its own.

    Raises
    ------
    ArtifactError
        The input lacks a fitted column or the key column.
    InputError
        The input has no rows.
    """
    options = pipeline_options(job, argv)
    normalizer = BatchNormalizer(artifact, inverse=inverse)
    normalizer.check_schema(source.schema, source.path)
    with _results_location(options) as results:
        counts_path = FileSystems.join(results, "counts.json")
        pipeline = create_pipeline(options)
        tables = pipeline | "ReadBatches" >> ReadBatches(source, None, job.local.batch_size)
        normalized, counts = tables | "ApplyNormalization" >> ApplyNormalization(
            artifact, inverse=inverse, with_counts=True
        )
        output_schema = normalizer.output_schema(source.schema, source.null_free(normalizer.features))
        _ = normalized | "WriteNormalized" >> WriteNormalized(str(output_dir), output_schema)
        if not inverse:
            _ = normalized | "MeasureConformity" >> MeasureConformity(artifact, str(output_dir))
        _ = counts | "WriteCounts" >> beam.Map(write_result, counts_path, encode_counts)
        run_pipeline(pipeline)
        merged = decode_counts(_read_result(counts_path))
    require_rows(merged.rows, source.path)
    return merged


def run(
    job: JobConfig, plan: FitPlan, source: InputSource, output_dir: Path | str, *, argv: Sequence[str] = ()
) -> tuple[Artifact, ApplyCounts]:
    """Fit and apply in one pipeline: the artifact reaches the apply step as a side input.

    The input is read twice (the feature columns for the statistics, every column for
    the output) rather than held until the statistics are complete. Errors in the fit
    (no rows, a feature without a finite value) stop the pipeline and are re-raised
    here as one-line normcore errors.

    Returns
    -------
    (Artifact, ApplyCounts)

    Notes
    -----
    A plan whose methods search a parameter over several passes (``power``) is fitted
    first (:func:`fit`, one pipeline per pass) and then applied (:func:`apply`).
    """
    if not plan.single_pass:
        artifact = fit(job, plan, source, argv=argv)
        return artifact, apply(job, artifact, source, output_dir, argv=argv)
    options = pipeline_options(job, argv)
    with _results_location(options) as results:
        artifact_path = FileSystems.join(results, "artifact.json")
        counts_path = FileSystems.join(results, "counts.json")
        pipeline = create_pipeline(options)
        artifact = (
            pipeline
            | "ReadForStats" >> ReadBatches(source, plan.columns(), job.local.batch_size)
            | "ComputeStats" >> ComputeStats(plan, job.beam.hot_key_fanout, source.path)
        )
        _ = artifact | "WriteArtifact" >> beam.Map(write_result, artifact_path, encode_artifact)
        normalized, counts = (
            pipeline
            | "ReadForApply" >> ReadBatches(source, None, job.local.batch_size)
            | "ApplyNormalization" >> ApplyNormalization(artifact, with_counts=True)
        )
        features = [f.name for f in plan.features]
        output_schema = float64_features(source.schema, features, source.null_free(features))
        _ = normalized | "WriteNormalized" >> WriteNormalized(str(output_dir), output_schema)
        _ = normalized | "MeasureConformity" >> MeasureConformity(artifact, str(output_dir))
        _ = counts | "WriteCounts" >> beam.Map(write_result, counts_path, encode_counts)
        run_pipeline(pipeline)
        fitted = parse_artifact(json.loads(_read_result(artifact_path)), "beam pipeline")
        merged = decode_counts(_read_result(counts_path))
    return fitted, merged


def run_pipeline(pipeline: beam.Pipeline) -> None:
    """Run ``pipeline`` to completion.

    A normcore error raised inside a step comes back with the step name appended (in
    process) or as the text of a worker's traceback (other processes, remote runners);
    either way it is re-raised here as its normcore type with its one-line message, so
    the CLI prints one ``error:`` line and exits with 2.
    """
    try:
        with _user_errors_unlogged():
            pipeline.run().wait_until_finish()
    except NormcoreError as exc:
        raise type(exc)(_first_line(str(exc))) from None
    except Exception as exc:
        remote = error_from_traceback(str(exc))
        if remote is None:
            raise
        raise type(remote)(_first_line(str(remote))) from None


class _DropNormcoreErrors(logging.Filter):
    """Drops log records that carry a normcore error (bad input, reported by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], NormcoreError))


@contextlib.contextmanager
def _user_errors_unlogged() -> Iterator[None]:
    # Beam's DoFnRunner logs an exception raised in a step, with its traceback, before
    # re-raising it; bad input must reach the user as one ``error:`` line only.
    runner_logger = logging.getLogger("apache_beam.runners.common")
    guard = _DropNormcoreErrors()
    runner_logger.addFilter(guard)
    try:
        yield
    finally:
        runner_logger.removeFilter(guard)


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line.split(" [while running", 1)[0]


def write_result(value: Any, path: str, encode: Callable[[Any], str]) -> None:
    """Write ``encode(value)`` to ``path`` (the pipeline's single result, read back by the caller)."""
    with FileSystems.create(path, mime_type="application/json") as stream:
        stream.write(encode(value).encode("utf-8"))


def encode_artifact(artifact: Artifact) -> str:
    """The artifact's JSON (checksum included)."""
    return artifact.to_json()


def encode_stats(stats: Stats) -> str:
    """JSON of an :class:`AccumulateStats` output: one accumulator, or ``[key, accumulator]`` pairs."""
    if isinstance(stats, StatsAccumulator):
        return stats.to_json()
    return "[" + ",".join(f"[{json.dumps(key)},{state.to_json()}]" for key, state in stats.items()) + "]"


def decode_stats(text: str) -> Stats:
    """Inverse of :func:`encode_stats`."""
    document = json.loads(text)
    if isinstance(document, dict):
        return StatsAccumulator.from_dict(document)
    return {key: StatsAccumulator.from_dict(state) for key, state in document}


def encode_counts(counts: ApplyCounts) -> str:
    """JSON of :meth:`ApplyCounts.to_dict`."""
    return json.dumps(counts.to_dict())


def decode_counts(text: str) -> ApplyCounts:
    """Inverse of :func:`encode_counts` (the unseen keys are the sample kept)."""
    document = json.loads(text)
    return ApplyCounts(
        rows=document["rows"],
        unseen_key_rows=document["unseen_key_rows"],
        null_key_rows=document["null_key_rows"],
        unseen_keys=set(document["unseen_keys_sample"]),
    )


@contextlib.contextmanager
def _results_location(options: PipelineOptions) -> Iterator[str]:
    """A directory both the pipeline's workers and this process can read and write."""
    temp_location = options.view_as(GoogleCloudOptions).temp_location
    if temp_location:
        location = FileSystems.join(temp_location, f"normcore-{uuid.uuid4().hex}")
        try:
            yield location
        finally:
            with contextlib.suppress(Exception):  # best effort: leftovers only cost storage
                matched = FileSystems.match([FileSystems.join(location, "*")])[0].metadata_list
                FileSystems.delete([m.path for m in matched])
        return
    if not results_are_local(options):
        runner = options.view_as(StandardOptions).runner
        raise ConfigError(
            f"option --temp_location is required with runner '{runner}': the pipeline writes its "
            "statistics there for this process to read (e.g. --temp_location=gs://BUCKET/tmp)"
        )
    location = tempfile.mkdtemp(prefix="normcore-beam-")
    try:
        yield location
    finally:
        shutil.rmtree(location, ignore_errors=True)


def _read_result(path: str) -> str:
    with FileSystems.open(path) as stream:
        return stream.read().decode("utf-8")
