"""Running normalization: each batch normalized with exponentially weighted statistics.

Streaming jobs whose data drift slowly can normalize each new batch with statistics that
forget the past at a fixed rate (:class:`~normcore.stats.ewm.EwmMoments`) instead of with a
frozen artifact. :class:`EwmNormalizer` keeps one state per column and applies the
``zscore`` formula (:func:`normcore.transforms.linear.linear_forward`) with the current
statistics; the Beam wrapper (``pipelines.beam.RunningNormalize``) keeps one in per-key
state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from normcore.arrays import column_as_float64, float64_column
from normcore.errors import ConfigError, InputError
from normcore.io import float64_features
from normcore.stats import as_float64
from normcore.stats.ewm import EwmMoments, check_alpha
from normcore.transforms.linear import linear_forward
from normcore.transforms.ops import NUMPY_OPS


def ewm_zscore(moments: EwmMoments) -> tuple[float, float]:
    """``(shift, scale)`` of ``(x - mean) / std`` with the current statistics.

    A state with zero (or no) spread gets scale 1, as a constant column does in a fitted
    artifact; an empty state is the identity.
    """
    if moments.count == 0:
        return 0.0, 1.0
    std = moments.std()
    return moments.mean, std if std > 0 and math.isfinite(std) else 1.0


class EwmNormalizer:
    """Running :class:`EwmMoments` of several columns, applied to Arrow record batches.

    Parameters
    ----------
    features : sequence of str
        Columns to track and normalize (any integer or float type).
    alpha : float
        Smoothing factor shared by every column (see :func:`alpha_from_halflife`).

    Notes
    -----
    The usual online loop is ``update(batch)`` then ``transform_batch(batch)``: each
    batch is normalized with statistics that include it, so the first batch is already
    normalized by its own mean and std. Other columns pass through untouched; nulls stay
    null and NaN / +-inf stay as they are.
    """

    def __init__(self, features: Sequence[str], alpha: float) -> None:
        alpha = check_alpha(alpha)
        if not features:
            raise ConfigError("ewm normalization needs at least one feature column")
        self.columns = {name: EwmMoments.create(alpha) for name in features}

    @property
    def features(self) -> list[str]:
        """The tracked columns, in order."""
        return list(self.columns)

    def update(self, batch: pa.RecordBatch | pa.Table) -> EwmNormalizer:
        """Fold ``batch`` (rows oldest first) into every column's state; returns ``self``."""
        for name, moments in self.columns.items():
            column = _column(batch, name)
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            for chunk in chunks:
                moments.add_nulls(chunk.null_count)
                moments.add_values(as_float64(chunk, name))
        return self

    def transform_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with every tracked column as float64 ``(x - mean) / std``."""
        columns = list(batch.columns)
        for name, moments in self.columns.items():
            values, validity = column_as_float64(_column(batch, name))
            shift, scale = ewm_zscore(moments)
            result = linear_forward(values, shift, scale, 0.0, None, NUMPY_OPS)
            columns[batch.schema.get_field_index(name)] = float64_column(result, validity)
        return pa.RecordBatch.from_arrays(columns, schema=float64_features(batch.schema, list(self.columns)))

    def summary(self) -> dict[str, dict[str, Any]]:
        """:meth:`EwmMoments.summary` of every column."""
        return {name: moments.summary() for name, moments in self.columns.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: ``{"columns": {name: EwmMoments.to_dict()}}``."""
        return {"columns": {name: m.to_dict() for name, m in self.columns.items()}}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EwmNormalizer:
        """Inverse of :meth:`to_dict`."""
        normalizer = cls.__new__(cls)
        normalizer.columns = {name: EwmMoments.from_dict(m) for name, m in state["columns"].items()}
        return normalizer


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array | pa.ChunkedArray:
    index = batch.schema.get_field_index(name)
    if index < 0:
        raise InputError(
            f"ewm normalization: column '{name}' is missing from the batch; it has: {', '.join(batch.schema.names)}"
        )
    return batch.column(index)
