"""The Spark engine behind ``normcore fit|apply|run --engine spark``.

``fit`` folds each share of the input files into normcore states on the executors and
merges them (:mod:`pipelines.spark.stats`): tasks read the files with Arrow on a
classic session over local (or shared) paths, and a DataFrame of the input through
``mapInArrow`` on Spark Connect or when the input is a URL only Spark's readers reach
(``s3a://``, ``hdfs://``: :func:`open_input`); ``apply`` reads the input as a DataFrame,
replaces the features by native Column expressions (:mod:`pipelines.spark.columns`)
and writes Parquet into the staging directory the CLI renames into place on success;
rows are counted from the written files' footers (no extra pass), null and unseen keys
by one aggregate over the key column.
The session comes from ``--master`` / ``--remote`` / ``--conf`` (``job.spark``), or from
spark-submit.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from normcore.apply import ApplyCounts
from normcore.artifact import Artifact
from normcore.config import JobConfig
from normcore.errors import EngineError, InputError, OutputError, error_from_traceback
from normcore.fitting import fit_in_passes
from normcore.io import InputSource, require_rows
from normcore.io import open_input as open_local_input
from normcore.paths import is_url
from normcore.plan import FitPlan
from normcore.stats import ColumnRequest, KeyedStats, StatsAccumulator
from pipelines.spark.columns import key_counts, normalize_frame
from pipelines.spark.frames import open_url, read_frame
from pipelines.spark.session import CAUSE, is_connect, session_for, short_cause
from pipelines.spark.stats import compute_stats, file_states, merge_states

if TYPE_CHECKING:
    from normcore.quality.validate import ValidationOutcome, ValidationRequest

__all__ = ["apply", "fit", "open_input", "task_seconds", "user_errors", "validate"]

#: Spark's report of a file its reader cannot decode, and the root cause.
_UNREADABLE = re.compile(r"\[FAILED_READ_FILE[.\w]*\] Encountered error while reading file (?:file://)?(\S+?)\.?\s")
#: A write that failed for lack of room or rights.
_WRITE_FAILED = re.compile(r"(No space left on device|Permission denied|Read-only file system|Disk quota exceeded)")
#: A Python worker that cannot import normcore or a library it needs (the executors run another Python).
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Re-raise bad input found by a task as a normcore error.

    Spark reports a failed task as a Java exception carrying the cause: a normcore
    error raised in a Python worker (the worker's traceback) is raised again as itself,
    a file Spark's reader cannot decode as :class:`InputError` naming the file, a write
    without room or rights as :class:`OutputError`, anything else as
    :class:`EngineError` with its :func:`short_cause`. The CLI then prints one
    ``error:`` line and exits 2; the Java stack trace is the error's ``detail``, shown
    with ``--verbose``.
    """
    try:
        yield
    except (Py4JJavaError, PySparkException) as exc:
        text = str(exc)
        missing = _NO_MODULE.search(text)
        if missing:
            raise EngineError(
                f"the Spark executors cannot import normcore (no module named '{missing.group(1)}'): run them "
                "with a Python that has normcore installed (--conf spark.pyspark.python=PATH, or a packed "
                "venv shipped with --archives; README, 'Spark clusters')",
                text,
            ) from None
        remote = error_from_traceback(text)
        if remote is not None:
            remote.detail = text
            raise remote from None
        unreadable = _UNREADABLE.search(text)
        if unreadable:
            causes = CAUSE.findall(text)
            reason = f": {causes[-1].strip()}" if causes else ""
            raise InputError(f"cannot read input file '{unreadable.group(1)}'{reason}", text) from None
        refused = _WRITE_FAILED.search(text)
        if refused:
            raise OutputError(f"Spark could not write its output: {refused.group(1)}", text) from None
        raise EngineError(f"the Spark job failed: {short_cause(text)}", text) from None


def task_seconds() -> float | None:
    """Seconds the executors of this process's Spark session have spent running tasks (every
    executor, live or gone, from Spark's status store); None without a classic session
    (none started yet, or Spark Connect, whose server keeps its own)."""
    spark = SparkSession.getActiveSession()
    if spark is None or is_connect(spark):
        return None
    try:
        executors = spark.sparkContext._jsc.sc().statusStore().executorList(False)
        return sum(executors.apply(i).totalDuration() for i in range(executors.size())) / 1000.0
    except Py4JError:  # the JVM is gone or its API differs: the time is unknown
        return None


def validate(request: ValidationRequest) -> ValidationOutcome:
    """Evaluate a validation's checks on Spark (:func:`pipelines.spark.validate.validate`;
    imported here, as it loads Great Expectations, which a fit or an apply never needs)."""
    from pipelines.spark.validate import validate as validate_on_spark

    return validate_on_spark(request)


def open_input(path: str | None, job: JobConfig) -> InputSource:
    """Resolve a local path or ``file://`` URL with :func:`normcore.io.open_input`; any other
    URL (``s3a://``, ``hdfs://``, ...) with Spark's readers, on the job's session.

    Raises
    ------
    InputError
        The input cannot be listed or read (the message names it).
    """
    if not path or not is_url(path):
        return open_local_input(path)
    spark = session_for(job.spark)
    with user_errors():
        return open_url(spark, path)


def fit(job: JobConfig, plan: FitPlan, source: InputSource, *, argv: Sequence[str] = ()) -> Artifact:
    """Fit ``plan`` on ``source`` with Spark: tasks read the files with Arrow where they can
    (a classic session, local paths), else a DataFrame of the input (Connect, URLs)."""
    spark = session_for(job.spark)
    direct = source.local and not is_connect(spark)
    frame = None if direct else read_frame(spark, source)

    def gather(requests: Sequence[ColumnRequest]) -> tuple[StatsAccumulator, KeyedStats | None]:
        if frame is not None:
            return compute_stats(frame, requests, plan.key)
        return merge_states(file_states(spark, source, requests, plan.key), requests, plan.key)

    with user_errors():
        return fit_in_passes(plan, gather, engine="spark", source=source.path)


def apply(
    job: JobConfig, artifact: Artifact, source: InputSource, output_dir: Path,
    *, inverse: bool = False, argv: Sequence[str] = (),
) -> ApplyCounts:  # fmt: skip
    """Normalize (or invert) ``source`` into Parquet files under ``output_dir``."""
    spark = session_for(job.spark)
    frame = read_frame(spark, source)
    with user_errors():
        normalize_frame(frame, artifact, inverse=inverse).write.mode("append").parquet(str(output_dir))
        counts = key_counts(frame, artifact) if artifact.key is not None else ApplyCounts()
    counts.rows = sum(pq.ParquetFile(path).metadata.num_rows for path in output_dir.glob("*.parquet"))
    require_rows(counts.rows, source.path)
    return counts
