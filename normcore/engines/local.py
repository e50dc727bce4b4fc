"""The local engine: Arrow record batches through the shared combiner and apply, on every core.

The input is cut into fragments (row groups of Parquet files, CSV files whole:
:meth:`normcore.io.InputSource.fragments`) by the files alone. ``fit`` folds each
fragment into its own state on ``local.workers`` threads (the statistics kernel and
Arrow's readers release the GIL) and merges the states in fragment order, so the
artifact is the same, bit for bit, whatever the number of workers. ``apply`` gives each
worker a contiguous run of fragments and its own output files, ``part-WWWWW-NNNNN.parquet``
(worker ``W``, file ``N``): sorted by name, the files hold the rows in input order. Each
worker streams with a bounded read-ahead, so memory grows with ``batch_size x workers``,
not with the data. A feature that the input's Parquet footers show to hold no null is
written declared not null (:func:`normcore.io.float64_features`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from normcore.apply import ApplyCounts, BatchNormalizer
from normcore.artifact import Artifact
from normcore.config import JobConfig
from normcore.fitting import fit_in_passes
from normcore.io import FRAGMENT_BYTES, Fragment, InputSource, RollingParquetWriter, map_in_threads, require_rows
from normcore.plan import FitPlan
from normcore.progress import row_progress
from normcore.stats import (
    ColumnRequest,
    FeatureStatsCombiner,
    KeyedStats,
    StatsAccumulator,
    fold_batches,
    merge_folds,
)


def fit(job: JobConfig, plan: FitPlan, source: InputSource, *, argv: Sequence[str] = ()) -> Artifact:
    """Fit ``plan`` on ``source`` on ``job.local.workers`` threads (one pass over the
    fragments per pass the fit needs)."""

    def gather(requests: Sequence[ColumnRequest]) -> tuple[StatsAccumulator, KeyedStats | None]:
        columns = [r.name for r in requests] + ([plan.key] if plan.key else [])
        with row_progress("fit", lambda: _total_rows(source)) as advance:

            def fold(batches: Iterable[pa.RecordBatch]) -> tuple[StatsAccumulator, KeyedStats | None]:
                return fold_batches(FeatureStatsCombiner(requests), batches, plan.key, advance)

            folds = source.map_fragments(fold, columns, job.local.batch_size, job.local.worker_count())
            return merge_folds(FeatureStatsCombiner(requests), folds, plan.key)

    return fit_in_passes(plan, gather, engine="local", source=source.path)


def fit_batches(plan: FitPlan, batches: Callable[[], Iterable[pa.RecordBatch]], source: str | None) -> Artifact:
    """Fit ``plan`` on record batches in memory; ``batches()`` yields them anew for each pass."""

    def gather(requests: Sequence[ColumnRequest]) -> tuple[StatsAccumulator, KeyedStats | None]:
        return fold_batches(FeatureStatsCombiner(requests), batches(), plan.key)

    return fit_in_passes(plan, gather, engine="local", source=source)


def apply(
    job: JobConfig, artifact: Artifact, source: InputSource, output_dir: Path,
    *, inverse: bool = False, argv: Sequence[str] = (),
) -> ApplyCounts:  # fmt: skip
    """Normalize (or invert) ``source`` into Parquet files under ``output_dir``, one run of
    fragments per worker (see the module notes for the file names and order)."""
    normalizer = BatchNormalizer(artifact, inverse=inverse)
    normalizer.check_schema(source.schema, source.path)
    pass_through = [name for name in source.schema.names if name not in normalizer.features]
    schema = normalizer.output_schema(source.schema, source.null_free(normalizer.features))
    runs = contiguous_runs(source.fragments(FRAGMENT_BYTES), job.local.worker_count())
    with row_progress("apply", lambda: _total_rows(source)) as advance:

        def write_run(index: int) -> ApplyCounts:
            writer = RollingParquetWriter(
                output_dir,
                schema,
                job.local.rows_per_file,
                pass_through,
                prefix=f"part-{index:05d}",
                sampled_columns=normalizer.features,
            )
            counts = ApplyCounts()
            for fragment in runs[index]:
                for batch in source.read_fragment(fragment, None, job.local.batch_size):
                    normalized, batch_counts = normalizer.transform_batch(batch)
                    writer.write(normalized)
                    counts.merge(batch_counts)
                    advance(batch.num_rows)
            writer.close()
            return counts

        counts = ApplyCounts()
        for run_counts in map_in_threads(write_run, range(len(runs)), len(runs)):
            counts.merge(run_counts)
    require_rows(counts.rows, source.path)
    return counts


def contiguous_runs(fragments: Sequence[Fragment], workers: int) -> list[list[Fragment]]:
    """``fragments`` cut into at most ``workers`` consecutive runs of about equal rows (bytes
    for CSV): a run ends before the fragment whose middle lies past its share of the total.
    Always at least one run, empty when there are no fragments."""
    weights = [f.rows if f.rows is not None else f.size for f in fragments]
    total = sum(weights)
    runs: list[list[Fragment]] = [[]]
    done = 0
    for fragment, weight in zip(fragments, weights, strict=True):
        if runs[-1] and len(runs) < workers and done + weight / 2 > total * len(runs) / workers:
            runs.append([])
        runs[-1].append(fragment)
        done += weight
    return runs


def _total_rows(source: InputSource) -> int | None:
    return source.count_rows() if source.format == "parquet" else None
