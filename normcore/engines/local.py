"""The local engine: streams Arrow record batches through the shared combiner and apply.

Memory is bounded by the batch size (see :meth:`normcore.io.InputSource.batches`),
not by the data size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from normcore.apply import ApplyCounts, BatchNormalizer
from normcore.artifact import Artifact
from normcore.config import JobConfig
from normcore.fitting import fit_in_passes
from normcore.io import InputSource, RollingParquetWriter, require_rows
from normcore.plan import FitPlan
from normcore.progress import row_progress
from normcore.stats import ColumnRequest, FeatureStatsCombiner, KeyedStats, StatsAccumulator, fold_batches


def fit(job: JobConfig, plan: FitPlan, source: InputSource, *, argv: Sequence[str] = ()) -> Artifact:
    """Fit ``plan`` on ``source`` in this process (one streaming pass per pass the fit needs)."""

    def gather(requests: Sequence[ColumnRequest]) -> tuple[StatsAccumulator, KeyedStats | None]:
        columns = [r.name for r in requests] + ([plan.key] if plan.key else [])
        with row_progress("fit", lambda: _total_rows(source)) as advance:
            batches = source.batches(columns, job.local.batch_size)
            return fold_batches(FeatureStatsCombiner(requests), batches, plan.key, advance)

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
    """Normalize (or invert) ``source`` into Parquet files under ``output_dir``."""
    normalizer = BatchNormalizer(artifact, inverse=inverse)
    normalizer.check_schema(source.schema, source.path)
    pass_through = [name for name in source.schema.names if name not in normalizer.features]
    writer = RollingParquetWriter(
        output_dir, normalizer.output_schema(source.schema), job.local.rows_per_file, pass_through
    )
    counts = ApplyCounts()
    with row_progress("apply", lambda: _total_rows(source)) as advance:
        for batch in source.batches(None, job.local.batch_size):
            normalized, batch_counts = normalizer.transform_batch(batch)
            writer.write(normalized)
            counts.merge(batch_counts)
            advance(batch.num_rows)
    writer.close()
    require_rows(counts.rows, source.path)
    return counts


def _total_rows(source: InputSource) -> int | None:
    return source.count_rows() if source.format == "parquet" else None
