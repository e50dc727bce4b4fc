"""Beam ``CombineFn`` adapters: they delegate to normcore's engine-agnostic combiners.

No statistic is computed here. :class:`FeatureStatsCombineFn` maps Beam's four calls
onto :class:`normcore.stats.FeatureStatsCombiner` one to one, and accumulators travel
as JSON (:meth:`StatsAccumulator.to_json`) through :class:`AccumulatorCoder`, never
as a pickle of the C++ sketch objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa

from normcore.apply import ApplyCounts
from normcore.stats import ColumnRequest, FeatureStatsCombiner, StatsAccumulator
from normcore.stats.combiner import ColumnsAccumulator


class AccumulatorCoder(beam.coders.Coder):
    """Encodes a normcore accumulator (:class:`~normcore.stats.combiner.ColumnsAccumulator`)
    as its UTF-8 JSON (:meth:`~normcore.stats.combiner.ColumnsAccumulator.to_json`).

    Parameters
    ----------
    kind : type
        The accumulator class (``StatsAccumulator``, ``ConformityAccumulator``).
    """

    def __init__(self, kind: type[ColumnsAccumulator]) -> None:
        self._kind = kind

    def encode(self, accumulator: ColumnsAccumulator) -> bytes:
        """JSON bytes (floats round-trip exactly)."""
        return accumulator.to_json().encode("utf-8")

    def decode(self, encoded: bytes) -> ColumnsAccumulator:
        """Inverse of :meth:`encode`."""
        return self._kind.from_json(encoded)

    def is_deterministic(self) -> bool:
        """Equal accumulators encode equally (column order is fixed by the requests)."""
        return True


class FeatureStatsCombineFn(beam.CombineFn):
    """Statistics of Arrow record batches / tables, one :class:`StatsAccumulator` out.

    Parameters
    ----------
    requests : sequence of ColumnRequest
        The columns and what to gather for each (``FitPlan.requests()``).

    Notes
    -----
    Inputs are whole ``pyarrow.RecordBatch`` or ``pyarrow.Table`` elements (as
    ``ReadFromParquetBatched`` yields them), never one row at a time. The contract is
    Beam's: ``add_input`` mutates its accumulator, ``merge_accumulators`` mutates only
    the first one, ``compact`` runs before an accumulator goes over the wire. The output
    is the merged accumulator; :func:`normcore.fitting.build_artifact` turns it into an
    artifact.
    """

    def __init__(self, requests: Sequence[ColumnRequest]) -> None:
        super().__init__()
        self._combiner = FeatureStatsCombiner(requests)

    def create_accumulator(self) -> StatsAccumulator:
        """An empty accumulator."""
        return self._combiner.create_accumulator()

    def add_input(
        self, mutable_accumulator: StatsAccumulator, element: pa.RecordBatch | pa.Table | tuple[str | None, Any]
    ) -> StatsAccumulator:
        """Fold one record batch or table, or a ``(key value, batch)`` pair (per-key statistics)."""
        if isinstance(element, tuple):
            key, batch = element
            return self._combiner.add_batch(mutable_accumulator, batch, key)
        return self._combiner.add_batch(mutable_accumulator, element)

    def merge_accumulators(self, accumulators: Iterable[StatsAccumulator]) -> StatsAccumulator:
        """Merge into the first accumulator."""
        return self._combiner.merge_accumulators(accumulators)

    def compact(self, accumulator: StatsAccumulator) -> StatsAccumulator:
        """The accumulator as it should travel."""
        return self._combiner.compact(accumulator)

    def extract_output(self, accumulator: StatsAccumulator) -> StatsAccumulator:
        """The merged accumulator itself."""
        return accumulator

    def get_accumulator_coder(self) -> beam.coders.Coder:
        """JSON coder (no pickle)."""
        return AccumulatorCoder(StatsAccumulator)


class ApplyCountsCombineFn(beam.CombineFn):
    """Merges the :class:`normcore.apply.ApplyCounts` of every normalized batch."""

    def create_accumulator(self) -> ApplyCounts:
        """Nothing counted yet."""
        return ApplyCounts()

    def add_input(self, mutable_accumulator: ApplyCounts, element: ApplyCounts) -> ApplyCounts:
        """Add one batch's counts."""
        return mutable_accumulator.merge(element)

    def merge_accumulators(self, accumulators: Iterable[ApplyCounts]) -> ApplyCounts:
        """Merge into the first accumulator."""
        iterator = iter(accumulators)
        merged = next(iterator, None) or ApplyCounts()
        for counts in iterator:
            merged.merge(counts)
        return merged

    def extract_output(self, accumulator: ApplyCounts) -> ApplyCounts:
        """The merged counts."""
        return accumulator
