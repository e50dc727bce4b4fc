"""The local validator's streaming pass: every row once, memory bounded by the batch size.

It measures what the row-level checks need (:class:`~normcore.quality.checks.Evidence`:
row count, range conformity, missing values, pass-through checksums) with normcore's
combiners, draws the uniform sample Great Expectations evaluates the aggregate checks on,
and records each row-level check's result in Great Expectations' layout
(:meth:`~normcore.quality.checks.CheckKind.stream`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from normcore.io import InputSource
from normcore.quality.checks import CheckPlan, Evidence
from normcore.quality.checksum import array_checksum, arrow_to_pandas, combine_checksums
from normcore.quality.conformity import ConformityCombiner


def features_frame(table: pa.Table, features: Iterable[str]) -> Any:
    """``table`` as pandas for Great Expectations, with +-inf in feature columns as NaN."""
    frame = arrow_to_pandas(table)
    for name in features:
        if name in frame.columns and frame[name].dtype.kind == "f":
            frame[name] = frame[name].where(np.isfinite(frame[name]))
    return frame


def stream_rows(
    output: InputSource,
    columns: list[str],
    passthrough: list[str],
    combiner: ConformityCombiner,
    rows: int,
    request: Any,
) -> tuple[Evidence, Any]:
    """One pass over every row: the evidence of the row-level checks and the uniform sample
    (a pandas frame of the features, or None) of ``request.settings.sample_rows`` rows."""
    settings = request.settings
    rng = np.random.default_rng(settings.seed)
    chosen = np.sort(rng.choice(rows, size=settings.sample_rows, replace=False))
    counts = combiner.create_accumulator()
    partial: dict[str, list[int]] = {name: [] for name in passthrough}
    pieces: list[pa.RecordBatch] = []
    offset = 0
    for batch in output.batches(columns, request.batch_size):
        combiner.add_batch(counts, batch)
        for name in passthrough:
            partial[name].append(array_checksum(batch.column(name)))
        lo, hi = np.searchsorted(chosen, [offset, offset + batch.num_rows])
        if hi > lo:
            pieces.append(batch.select(request.artifact.feature_names).take(pa.array(chosen[lo:hi] - offset)))
        offset += batch.num_rows
    sample = pa.Table.from_batches(pieces) if pieces else None
    frame = features_frame(sample, request.artifact.feature_names) if sample is not None else None
    checksums = {name: combine_checksums(values) for name, values in partial.items()}
    return Evidence(counts.rows, counts, checksums, frozenset(output.schema.names)), frame


def record_row_level(run: Any, plan: CheckPlan, evidence: Evidence) -> None:
    """Record every row-level check of ``plan`` in ``run`` from ``evidence``."""
    where = f"every row ({evidence.rows}), streaming (normcore combiners)"
    for index, check in enumerate(plan.checks):
        if check.row_level:
            success, result = check.kind.stream(check, evidence)
            run.record(index, success, result, where)
