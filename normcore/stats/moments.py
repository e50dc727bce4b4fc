"""Mergeable, exact first and second moments of one numeric column.

:class:`MomentsState` is the unit every engine accumulates: the local engine
folds record batches into it, Beam's ``CombineFn`` and Spark's per-partition
functions delegate to it, and states from anywhere merge into one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from normcore.stats._moments import first_finite, moments_kernel


def chan_merge(
    weight: float, mean: float, m2: float, other_weight: float, other_mean: float, other_m2: float
) -> tuple[float, float]:
    """Mean and M2 of two parts given their weights, means and M2 (Chan et al.'s pairwise
    update; means as deviations from one pivot). Weights are counts, or sums of weights."""
    total = weight + other_weight
    delta = other_mean - mean
    return mean + delta * (other_weight / total), m2 + other_m2 + delta * delta * (weight * other_weight / total)


#: Batches whose values exceed this magnitude are summed scaled by a power of two, so that
#: squares of deviations stay finite (2**500 squared is far below the float64 maximum).
_SCALE_LIMIT_EXPONENT = 500


@dataclass(slots=True)
class MomentsState:
    """Count, mean, M2, min, max and null / NaN / inf counts of one column.

    The mean is held as ``pivot + mean_dev``: ``pivot`` is the first finite
    value the state saw and ``mean_dev`` the mean deviation from it, so sums
    run over deviation-sized numbers and keep full float64 precision at any
    offset (``1e12 + N(0, 1)`` keeps ~15 significant digits of variance).

    Attributes
    ----------
    count : int
        Finite values seen.
    null_count, nan_count, inf_count : int
        Values left out of the moments: nulls (missing), NaN, +-inf.
    pivot : float
        Reference value deviations are taken from (0.0 while empty).
    mean_dev : float
        Mean of ``x - pivot`` over the finite values, in units of ``2**exponent``.
    m2 : float
        Sum of squared deviations from the mean, in units of ``4**exponent``.
    min, max : float
        Extremes of the finite values; ``+inf`` / ``-inf`` while empty.
    exponent : int
        0 unless values beyond ``2**500`` were seen: then every value is summed divided
        by ``2**exponent`` (exact, a power of two), so that squares stay finite and the
        standard deviation is exact up to the float64 maximum. The variance of such data
        may exceed the float64 range (:meth:`variance` is then infinite; :meth:`std` is not).

    Notes
    -----
    * ``add_values`` and ``merge`` mutate and return ``self`` (the Beam
      ``CombineFn`` contract: the first accumulator may be mutated).
    * An empty state is an identity for ``merge``.
    * Merging is associative and commutative up to rounding (a few ulps).
    * Accuracy: the variance to a few ulps relative; the mean to a few ulps of
      ``max(|mean|, std)`` (a mean that cancels to nearly zero is accurate relative to
      the spread, as with any floating-point summation).
    * Integer inputs are converted to float64 first; integers beyond 2**53 are
      rounded by that conversion.
    """

    count: int = 0
    null_count: int = 0
    nan_count: int = 0
    inf_count: int = 0
    pivot: float = 0.0
    mean_dev: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    exponent: int = 0

    def add_values(self, values: np.ndarray) -> MomentsState:
        """Fold a float64 array (NaN / inf allowed, no nulls) into the state."""
        if values.size == 0:
            return self
        values = np.ascontiguousarray(values, dtype=np.float64)  # the kernel reads one contiguous buffer
        if self.count == 0:
            pivot = first_finite(values)
            if math.isnan(pivot):
                nan_count = int(np.count_nonzero(np.isnan(values)))
                self.nan_count += nan_count
                self.inf_count += values.size - nan_count
                return self
            self.pivot = float(pivot)
        count, nans, infs, mean_dev, m2, lo, hi = self._sums(values)
        if count and not (math.isfinite(mean_dev) and math.isfinite(m2)):
            # Deviations or their squares overflowed: sum this batch (and what follows) scaled.
            self._rescale(max(self.exponent, math.frexp(max(abs(lo), abs(hi)))[1] - _SCALE_LIMIT_EXPONENT))
            count, nans, infs, mean_dev, m2, lo, hi = self._sums(values)
        self.nan_count += nans
        self.inf_count += infs
        self._fold(count, mean_dev, m2, lo, hi)
        return self

    def _sums(self, values: np.ndarray):
        if self.exponent == 0:
            return moments_kernel(values, self.pivot)
        count, nans, infs, mean_dev, m2, _, _ = moments_kernel(np.ldexp(values, -self.exponent), self._scaled_pivot)
        _, _, _, _, _, lo, hi = moments_kernel(values, self.pivot)
        return count, nans, infs, mean_dev, m2, lo, hi

    @property
    def _scaled_pivot(self) -> float:
        return math.ldexp(self.pivot, -self.exponent)

    def _rescale(self, exponent: int) -> None:
        """Express ``mean_dev`` and ``m2`` in units of ``2**exponent`` (``exponent`` >= the current one)."""
        if exponent <= self.exponent:
            return
        if self.count:
            mean = self._scaled_pivot + self.mean_dev
            shift = self.exponent - exponent
            self.mean_dev = math.ldexp(mean, shift) - math.ldexp(self.pivot, -exponent)
            self.m2 = math.ldexp(self.m2, 2 * shift)
        self.exponent = exponent

    def add_nulls(self, null_count: int) -> MomentsState:
        """Count ``null_count`` missing values."""
        self.null_count += null_count
        return self

    def merge(self, other: MomentsState) -> MomentsState:
        """Fold ``other`` into this state (``other`` is left unchanged)."""
        self.null_count += other.null_count
        self.nan_count += other.nan_count
        self.inf_count += other.inf_count
        if other.count == 0:
            return self
        if self.count == 0:
            self.pivot = other.pivot
            self.mean_dev = other.mean_dev
            self.m2 = other.m2
            self.count = other.count
            self.min = other.min
            self.max = other.max
            self.exponent = other.exponent
            return self
        self._rescale(other.exponent)
        if self.exponent == 0:
            # other's mean expressed as a deviation from this pivot.
            other_mean_dev, other_m2 = (other.pivot - self.pivot) + other.mean_dev, other.m2
        else:
            shift = other.exponent - self.exponent
            other_mean = math.ldexp(other._scaled_pivot + other.mean_dev, shift)
            other_mean_dev, other_m2 = other_mean - self._scaled_pivot, math.ldexp(other.m2, 2 * shift)
        self._fold(other.count, other_mean_dev, other_m2, other.min, other.max)
        return self

    def _fold(self, count: int, mean_dev: float, m2: float, lo: float, hi: float) -> None:
        if count == 0:
            return
        self.mean_dev, self.m2 = chan_merge(self.count, self.mean_dev, self.m2, count, mean_dev, m2)
        self.count += count
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    @property
    def mean(self) -> float:
        """Mean of the finite values (NaN when there is none)."""
        if not self.count:
            return math.nan
        if self.exponent == 0:
            return self.pivot + self.mean_dev
        return math.ldexp(self._scaled_pivot + self.mean_dev, self.exponent)

    def variance(self, ddof: int = 0) -> float:
        """Variance ``m2 / (count - ddof)``; NaN when ``count <= ddof``, infinite when it
        exceeds the float64 range (see :attr:`exponent`)."""
        if self.count <= ddof:
            return math.nan
        variance = self.m2 / (self.count - ddof)
        if self.exponent == 0:
            return variance
        try:
            return math.ldexp(variance, 2 * self.exponent)
        except OverflowError:
            return math.inf

    def std(self, ddof: int = 0) -> float:
        """Standard deviation ``sqrt(m2 / (count - ddof))``, finite for any finite data;
        NaN when ``count <= ddof``."""
        if self.count <= ddof:
            return math.nan
        return math.ldexp(math.sqrt(self.m2 / (self.count - ddof)), self.exponent)

    @property
    def max_abs(self) -> float:
        """Largest absolute finite value (NaN when there is none)."""
        return max(abs(self.min), abs(self.max)) if self.count else math.nan

    def summary(self) -> dict[str, Any]:
        """Statistics as written in the artifact (``var`` / ``std`` with ddof 0).

        Values that do not exist for an empty column are ``None``, and so is a variance
        beyond the float64 range (the standard deviation is given).
        """
        empty = self.count == 0
        var = self.variance(0)
        return {
            "count": self.count,
            "null_count": self.null_count,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "mean": None if empty else self.mean,
            "var": None if empty or not math.isfinite(var) else var,
            "std": None if empty else self.std(0),
            "min": None if empty else self.min,
            "max": None if empty else self.max,
            "max_abs": None if empty else self.max_abs,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the full state (``min``/``max`` ``None`` while empty)."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.count == 0:
            state["min"] = state["max"] = None
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> MomentsState:
        """Inverse of :meth:`to_dict`."""
        values = dict(state)
        values["min"] = math.inf if values.get("min") is None else float(values["min"])
        values["max"] = -math.inf if values.get("max") is None else float(values["max"])
        values.setdefault("exponent", 0)
        return cls(**values)
