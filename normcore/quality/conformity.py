"""Input range conformity: the fraction of each feature's values inside its expected range.

:class:`ConformityCombiner` is engine-agnostic and follows the combiner contract of
:mod:`normcore.stats.combiner` (``create_accumulator`` / ``add_batch`` /
``merge_accumulators`` / ``compact`` / ``extract_output``): the local validator
streams record batches through it, the Beam pipeline wraps it in a ``CombineFn``
(``pipelines/beam/quality.py``), and the result equals what Great Expectations
reports for ``expect_column_values_to_be_between`` on the same data.

Conventions (those of Great Expectations on pandas)
--------------------------------------------------
* A value is *missing* when it is null, NaN or +-inf; missing values are counted but
  are neither in nor out of range. ``apply`` passes non-finite inputs through
  unchanged (they are left out of the statistics too), so they say nothing about the
  transform; the validators hand them to Great Expectations as missing (NaN / null).
* A value ``v`` is in range when ``low <= v <= high`` (bounds included).
* Conformity is ``in_range / values`` over the non-missing values; ``None`` when a
  feature has no non-missing value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from normcore.arrays import column_as_float64
from normcore.errors import InputError
from normcore.stats.combiner import ColumnsAccumulator, Combiner


@dataclass(slots=True)
class FeatureConformity:
    """Counts of one feature: non-missing ``values``, those ``in_range``, ``missing``
    (null, NaN or +-inf), and the observed ``min`` / ``max`` of the non-missing values."""

    values: int = 0
    in_range: int = 0
    missing: int = 0
    min: float = math.inf
    max: float = -math.inf

    @property
    def fraction(self) -> float | None:
        """``in_range / values``, or None without values."""
        return self.in_range / self.values if self.values else None

    def merge(self, other: FeatureConformity) -> FeatureConformity:
        """Fold ``other`` into this object and return it."""
        self.values += other.values
        self.in_range += other.in_range
        self.missing += other.missing
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe counts: ``min`` / ``max`` None while there is no value, and the
        strings ``"inf"`` / ``"-inf"`` when infinite."""
        state = asdict(self)
        for bound in ("min", "max"):
            value = state[bound]
            state[bound] = None if not self.values else value if math.isfinite(value) else str(value)
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> FeatureConformity:
        """Inverse of :meth:`to_dict`."""
        low, high = state.get("min"), state.get("max")
        return cls(
            int(state["values"]),
            int(state["in_range"]),
            int(state["missing"]),
            math.inf if low is None else float(low),
            -math.inf if high is None else float(high),
        )


class ConformityAccumulator(ColumnsAccumulator):
    """Rows seen and a :class:`FeatureConformity` per feature."""

    __slots__ = ()
    state_type = FeatureConformity


class ConformityCombiner(Combiner):
    """Counts, per feature, the values inside an expected range.

    Parameters
    ----------
    ranges : mapping of str to (float, float)
        Feature name -> inclusive ``(low, high)`` bounds, usually
        :func:`normcore.quality.checks.expected_ranges` of an artifact.

    Notes
    -----
    ``add_batch`` mutates its accumulator; ``merge_accumulators`` mutates and
    returns only the first; an empty accumulator is an identity for merging. Any
    split of the rows into batches, merged in any order, gives the same counts.
    """

    def __init__(self, ranges: Mapping[str, tuple[float, float]]) -> None:
        self.ranges = {name: (float(low), float(high)) for name, (low, high) in ranges.items()}

    def create_accumulator(self) -> ConformityAccumulator:
        """An empty accumulator."""
        return ConformityAccumulator(0, {name: FeatureConformity() for name in self.ranges})

    def add_batch(self, accumulator: ConformityAccumulator, batch: pa.RecordBatch | pa.Table) -> ConformityAccumulator:
        """Fold one Arrow batch holding every feature column (any integer or float type)."""
        accumulator.rows += batch.num_rows
        for name, (low, high) in self.ranges.items():
            index = batch.schema.get_field_index(name)
            if index < 0:
                raise InputError(f"column '{name}' is missing from the batch")
            values, _ = column_as_float64(_numeric(batch.column(index), name))
            accumulator.columns[name].merge(_count(values, low, high))
        return accumulator

    def extract_output(self, accumulator: ConformityAccumulator) -> dict[str, Any]:
        """The conformity report: per feature its range, counts and fraction, and the total.

        Returns
        -------
        dict
            ``{"rows", "conformity", "values", "in_range", "features": {name: {"range",
            "values", "in_range", "missing", "min", "max", "conformity"}}}``, where the
            top-level ``conformity`` pools every feature's values.
        """
        features = {}
        for name, counts in accumulator.columns.items():
            features[name] = {"range": list(self.ranges[name]), **counts.to_dict(), "conformity": counts.fraction}
        values = sum(c.values for c in accumulator.columns.values())
        in_range = sum(c.in_range for c in accumulator.columns.values())
        return {
            "rows": accumulator.rows,
            "conformity": in_range / values if values else None,
            "values": values,
            "in_range": in_range,
            "features": features,
        }


def _numeric(column: pa.Array | pa.ChunkedArray, name: str) -> pa.Array | pa.ChunkedArray:
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise InputError(f"column '{name}' has type {kind}, expected an integer or float type")
    return column


def _count(values: np.ndarray, low: float, high: float) -> FeatureConformity:
    present = values[np.isfinite(values)]
    if present.size == 0:
        return FeatureConformity(missing=values.size)
    inside = int(np.count_nonzero((present >= low) & (present <= high)))
    return FeatureConformity(
        present.size, inside, values.size - present.size, float(present.min()), float(present.max())
    )
