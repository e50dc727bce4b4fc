"""The local validator's streaming pass: every row once, memory bounded by the batch size
times the workers.

It measures what the row-level checks need (:class:`~normcore.quality.checks.Evidence`:
row count, range conformity, missing values, pass-through checksums) with normcore's
combiners, draws the uniform sample Great Expectations evaluates the aggregate checks on,
and records each row-level check's result in Great Expectations' layout
(:meth:`~normcore.quality.checks.CheckKind.stream`). The fragments of a Parquet output
(:meth:`~normcore.io.InputSource.fragments`) are read on ``request.workers`` threads, each
knowing its first row from the footers; the counts and checksums are sums, and the sample
is the same rows in the same order, so the evidence does not depend on the workers. CSV
files are read one after another (a file's rows are known only once it is read).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import accumulate
from typing import Any

import numpy as np
import pyarrow as pa

from normcore.io import FRAGMENT_BYTES, Fragment, InputSource, map_in_threads
from normcore.quality.checks import CheckPlan, Evidence
from normcore.quality.checksum import array_checksum, arrow_to_pandas, combine_checksums
from normcore.quality.conformity import ConformityAccumulator, ConformityCombiner

#: What one fragment contributes: its rows, conformity counts, the checksum of each
#: pass-through column, and its rows of the sample.
Share = tuple[int, ConformityAccumulator, dict[str, str], list[pa.RecordBatch]]


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
    features = request.artifact.feature_names

    def fold(fragment: Fragment, start: int) -> Share:
        counts = combiner.create_accumulator()
        partial: dict[str, list[int]] = {name: [] for name in passthrough}
        pieces: list[pa.RecordBatch] = []
        offset = start
        for batch in output.read_fragment(fragment, columns, request.batch_size):
            combiner.add_batch(counts, batch)
            for name in passthrough:
                partial[name].append(array_checksum(batch.column(name)))
            lo, hi = np.searchsorted(chosen, [offset, offset + batch.num_rows])
            if hi > lo:
                pieces.append(batch.select(features).take(pa.array(chosen[lo:hi] - offset)))
            offset += batch.num_rows
        return offset - start, counts, {name: combine_checksums(v) for name, v in partial.items()}, pieces

    fragments = output.fragments(FRAGMENT_BYTES)
    shares: list[Share] = []
    if all(fragment.rows is not None for fragment in fragments):
        starts = list(accumulate((fragment.rows for fragment in fragments), initial=0))[:-1]
        shares = map_in_threads(lambda item: fold(*item), list(zip(fragments, starts, strict=True)), request.workers)
    else:
        start = 0
        for fragment in fragments:
            shares.append(fold(fragment, start))
            start += shares[-1][0]
    counts = combiner.merge_accumulators([combiner.create_accumulator(), *(share[1] for share in shares)])
    pieces = [piece for share in shares for piece in share[3]]
    sample = pa.Table.from_batches(pieces) if pieces else None
    frame = features_frame(sample, features) if sample is not None else None
    checksums = {name: combine_checksums(share[2][name] for share in shares) for name in passthrough}
    return Evidence(counts.rows, counts, checksums, frozenset(output.schema.names)), frame


def record_row_level(run: Any, plan: CheckPlan, evidence: Evidence) -> None:
    """Record every row-level check of ``plan`` in ``run`` from ``evidence``."""
    where = f"every row ({evidence.rows}), streaming (normcore combiners)"
    for index, check in enumerate(plan.checks):
        if check.row_level:
            success, result = check.kind.stream(check, evidence)
            run.record(index, success, result, where)
