"""Exponentially weighted moments: running statistics for online normalization.

Streaming jobs whose data drift slowly can normalize each new batch with statistics
that forget the past at a fixed rate instead of with a frozen artifact. This module
holds the formulas; the Beam wrapper (``pipelines.beam.RunningNormalize``) only keeps
an :class:`EwmNormalizer` in per-key state and calls :meth:`EwmNormalizer.update`
and :meth:`EwmNormalizer.transform_batch`.

Definitions
-----------
After finite values ``x_1 .. x_n`` (oldest first) and smoothing factor ``alpha``,
value ``x_i`` has weight ``w_i = (1 - alpha) ** (n - i)`` (the newest weighs 1) and

* ``mean = sum(w_i x_i) / sum(w_i)``
* ``var = sum(w_i (x_i - mean) ** 2) / sum(w_i)`` (weighted population variance)

These are pandas' ``Series.ewm(alpha=alpha, adjust=True).mean()`` and
``.var(bias=True)`` at the last value. The state keeps ``weight = sum(w_i)``, the
mean (as a pivot plus a mean deviation) and ``m2 = sum(w_i (x_i - mean) ** 2)``;
appending a block of values decays the old ``weight`` and ``m2`` by
``(1 - alpha) ** n_block`` and combines the two parts
with the weighted form of Chan et al.'s pairwise update, so a batch is folded in one
vectorized pass and never value by value.

NaN, +-inf and nulls are left out and counted; they do not advance the decay (the
weights count finite values, not rows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa

from normcore.apply import column_as_float64
from normcore.errors import ConfigError, InputError
from normcore.stats.combiner import as_float64
from normcore.transforms.fitted import LinearTransform


def alpha_from_halflife(halflife: float) -> float:
    """Smoothing factor whose weights halve every ``halflife`` finite values.

    Parameters
    ----------
    halflife : float
        Positive number of values after which a value's weight is one half.

    Returns
    -------
    float
        ``1 - 0.5 ** (1 / halflife)``, in (0, 1).

    Raises
    ------
    ConfigError
        ``halflife`` is not a positive finite number.
    """
    if not (isinstance(halflife, (int, float)) and math.isfinite(halflife) and halflife > 0):
        raise ConfigError(f"ewm halflife must be a positive number of values, got {halflife!r}")
    return 1.0 - 0.5 ** (1.0 / halflife)


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float after checking ``0 < alpha <= 1``.

    Raises
    ------
    ConfigError
        Naming the value that arrived.
    """
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha <= 1.0):
        raise ConfigError(f"ewm alpha must satisfy 0 < alpha <= 1, got {alpha!r}")
    return float(alpha)


@dataclass(slots=True)
class EwmMoments:
    """Exponentially weighted mean and variance of one column.

    Attributes
    ----------
    alpha : float
        Smoothing factor, ``0 < alpha <= 1`` (1 keeps only the newest value).
    count : int
        Finite values folded in.
    null_count, nan_count, inf_count : int
        Values left out: nulls, NaN, +-inf.
    weight : float
        ``sum(w_i)``; the newest value weighs 1.
    pivot : float
        Reference value deviations are taken from: the first finite value seen (0.0
        while empty), as in :class:`~normcore.stats.MomentsState`, so the sums run
        over deviation-sized numbers and keep full precision at any offset.
    mean_dev : float
        Weighted mean of ``x - pivot``.
    m2 : float
        ``sum(w_i (x_i - mean) ** 2)``.

    Notes
    -----
    * ``add_values`` and ``merge`` mutate and return ``self``.
    * ``a.merge(b)`` means "the values of ``b`` came after those of ``a``": merging is
      associative but not commutative, and an empty state is an identity on both sides.
    * Folding values in blocks gives the same state as one value at a time (up to
      rounding), which is what lets a stream be cut into batches anywhere.
    """

    alpha: float
    count: int = 0
    null_count: int = 0
    nan_count: int = 0
    inf_count: int = 0
    weight: float = 0.0
    pivot: float = 0.0
    mean_dev: float = 0.0
    m2: float = 0.0

    @classmethod
    def create(cls, alpha: float) -> EwmMoments:
        """An empty state with smoothing factor ``alpha`` (checked)."""
        return cls(check_alpha(alpha))

    def add_values(self, values: np.ndarray) -> EwmMoments:
        """Fold a float64 array, oldest value first (NaN / inf allowed, no nulls).

        Parameters
        ----------
        values : ndarray of float64, shape (n_values,)

        Returns
        -------
        EwmMoments
            ``self``.
        """
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        finite_mask = np.isfinite(values)
        finite = values[finite_mask]
        if finite.size != values.size:
            nan_count = int(np.count_nonzero(np.isnan(values)))
            self.nan_count += nan_count
            self.inf_count += values.size - finite.size - nan_count
        if finite.size == 0:
            return self
        if self.count == 0:
            self.pivot = float(finite[0])
        # Newest value weighs (1 - alpha) ** 0 = 1; underflow to 0 is harmless.
        weights = np.power(1.0 - self.alpha, np.arange(finite.size - 1, -1, -1, dtype=np.float64))
        deviations = finite - self.pivot
        block_weight = float(weights.sum())
        block_mean_dev = float(np.dot(weights, deviations) / block_weight)
        centered = deviations - block_mean_dev
        block_m2 = float(np.dot(weights, centered * centered))
        self._append(finite.size, block_weight, block_mean_dev, block_m2)
        return self

    def add_nulls(self, null_count: int) -> EwmMoments:
        """Count ``null_count`` missing values."""
        self.null_count += null_count
        return self

    def merge(self, later: EwmMoments) -> EwmMoments:
        """Fold ``later`` (values that came after this state's) into this state.

        Raises
        ------
        ValueError
            The two states have different ``alpha``.
        """
        if later.alpha != self.alpha:
            raise ValueError(f"cannot merge ewm states with alpha {self.alpha} and {later.alpha}")
        self.null_count += later.null_count
        self.nan_count += later.nan_count
        self.inf_count += later.inf_count
        if later.count == 0:
            return self
        if self.count == 0:
            self.pivot = later.pivot
        # later's mean as a deviation from this pivot
        self._append(later.count, later.weight, (later.pivot - self.pivot) + later.mean_dev, later.m2)
        return self

    def _append(self, count: int, weight: float, mean_dev: float, m2: float) -> None:
        # Decay the old part by one factor per newer value, then Chan's weighted merge,
        # in deviation space (``mean_dev`` is relative to ``self.pivot``).
        if self.count == 0:
            self.count, self.weight, self.mean_dev, self.m2 = count, weight, mean_dev, m2
            return
        decay = (1.0 - self.alpha) ** count
        old_weight = self.weight * decay
        total = old_weight + weight
        delta = mean_dev - self.mean_dev
        self.mean_dev += delta * (weight / total)
        self.m2 = self.m2 * decay + m2 + delta * delta * (old_weight * weight / total)
        self.weight = total
        self.count += count

    @property
    def mean(self) -> float:
        """Weighted mean of the finite values (NaN while empty)."""
        return self.pivot + self.mean_dev if self.count else math.nan

    def variance(self) -> float:
        """Weighted population variance ``m2 / weight`` (NaN while empty)."""
        return self.m2 / self.weight if self.count else math.nan

    def summary(self) -> dict[str, Any]:
        """``count``, null / NaN / inf counts, ``mean``, ``var``, ``std`` (None while empty).

        The keys are those of the artifact's ``stats``, so
        :mod:`normcore.stats.compare` compares a running state with a fitted artifact.
        """
        empty = self.count == 0
        var = self.variance()
        return {
            "count": self.count,
            "null_count": self.null_count,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "mean": None if empty else self.mean,
            "var": None if empty else var,
            "std": None if empty else math.sqrt(var),
        }

    def linear_transform(self) -> LinearTransform:
        """``(x - mean) / std`` with the current statistics.

        A state with zero (or no) spread gets scale 1, as a constant column does in a
        fitted artifact; an empty state is the identity.
        """
        if self.count == 0:
            return LinearTransform("ewm_zscore", 0.0, 1.0)
        std = math.sqrt(self.variance())
        scale = std if std > 0 and math.isfinite(std) else 1.0
        return LinearTransform("ewm_zscore", self.mean, scale)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the full state."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EwmMoments:
        """Inverse of :meth:`to_dict`."""
        return cls(**state)


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
        self.columns = {name: EwmMoments(alpha) for name in features}

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
        schema = batch.schema
        for name, moments in self.columns.items():
            index = schema.get_field_index(name)
            values, mask = column_as_float64(_column(batch, name))
            result = moments.linear_transform().forward(values)
            columns[index] = pa.array(result, type=pa.float64(), mask=mask)
            schema = schema.set(index, schema.field(index).with_type(pa.float64()))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

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
