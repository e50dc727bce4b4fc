"""Mergeable quantile sketch (Apache DataSketches KLL) with NumPy-style interpolation.

Only methods that need quantiles (``robust``, ``quantile``) pay for a sketch.

Notes
-----
Accuracy: a KLL sketch with parameter ``k`` answers rank queries within
``normalized_rank_error`` (single-sided, 99th percentile of the error,
:attr:`QuantileSketch.rank_error`): for the default ``k = 2048`` that is 0.14 % of
the row count. A sketch that has seen at most about ``k`` values keeps every one of
them and is exact; quantiles then equal ``numpy.percentile(..., method="linear")``
to the last bit.

KLL compaction is randomised, so two fits that merge batches in a different
order can return slightly different quantiles (both within the rank error).
Moments (mean, variance, min, max) do not have this caveat.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

#: Default KLL ``k``: 0.14 % rank error, exact up to ~2k values, ~50 KB serialized.
DEFAULT_SKETCH_K = 2048


class QuantileSketch:
    """A KLL quantile sketch over the finite values of one column.

    Parameters
    ----------
    k : int, default 2048
        Size / accuracy trade-off of the sketch (8 <= k <= 65535).

    Notes
    -----
    ``add_values`` and ``merge`` mutate and return ``self``. Pickling goes through
    the sketch's own binary serialization (the C++ object does not pickle).
    """

    __slots__ = ("_sketch",)

    def __init__(self, k: int = DEFAULT_SKETCH_K) -> None:
        self._sketch = kll_doubles_sketch(k)

    @property
    def k(self) -> int:
        """The sketch's ``k`` parameter."""
        return self._sketch.k

    @property
    def n(self) -> int:
        """Values seen."""
        return self._sketch.n

    @property
    def rank_error(self) -> float:
        """Single-sided normalized rank error (0 while the sketch is exact)."""
        if not self._sketch.is_estimation_mode():
            return 0.0
        return self._sketch.normalized_rank_error(False)

    def add_values(self, finite_values: np.ndarray) -> QuantileSketch:
        """Add a float64 array that holds finite values only."""
        if finite_values.size:
            self._sketch.update(np.ascontiguousarray(finite_values, dtype=np.float64))
        return self

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Fold ``other`` into this sketch."""
        if other.n:
            self._sketch.merge(other._sketch)
        return self

    def percentiles(self, percents: np.ndarray | list[float]) -> np.ndarray:
        """Percentiles with NumPy's ``linear`` interpolation between order statistics.

        Parameters
        ----------
        percents : array-like of float in [0, 100]

        Returns
        -------
        ndarray of float64
            Exactly ``numpy.percentile(values, percents)`` while the sketch is
            exact; otherwise within :attr:`rank_error` in rank, except the 0th and
            100th percentiles, which are always the exact min and max. NaN when empty.
        """
        q = np.asarray(percents, dtype=np.float64) / 100.0
        n = self.n
        if n == 0:
            return np.full(q.shape, math.nan)
        # NumPy's virtual index into the sorted values, then the order statistics
        # on both sides, each looked up by the centre of its rank interval.
        position = q * (n - 1)
        below = np.floor(position)
        above = np.minimum(below + 1, n - 1)
        indices = np.concatenate([below, above])
        items = np.asarray(self._sketch.get_quantiles(((indices + 0.5) / n).tolist(), True), dtype=np.float64)
        # The sketch keeps the exact extremes; an estimating sketch may not return them by rank.
        items[indices == 0] = self._sketch.get_min_value()
        items[indices == n - 1] = self._sketch.get_max_value()
        lower, upper = items[: q.size], items[q.size :]
        return _lerp(lower, upper, position - below)

    def cdf(self, split_points: np.ndarray | list[float]) -> np.ndarray:
        """Fraction of values ``<= split_points[i]`` for each (increasing) split point.

        Returns ``len(split_points) + 1`` cumulative fractions, the last being 1.
        NaN when empty.
        """
        points = [float(p) for p in split_points]
        if self.n == 0:
            return np.full(len(points) + 1, math.nan)
        return np.asarray(self._sketch.get_cdf(points, True), dtype=np.float64)

    def to_bytes(self) -> bytes:
        """The sketch's portable binary serialization (DataSketches format)."""
        return self._sketch.serialize()

    @classmethod
    def from_bytes(cls, blob: bytes) -> QuantileSketch:
        """Inverse of :meth:`to_bytes`."""
        sketch = cls.__new__(cls)
        sketch._sketch = kll_doubles_sketch.deserialize(blob)
        return sketch

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: algorithm, k, n, rank error and base64 bytes."""
        return {
            "sketch": "kll_doubles",
            "k": self.k,
            "n": self.n,
            "normalized_rank_error": self.rank_error,
            "data": base64.b64encode(self.to_bytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> QuantileSketch:
        """Inverse of :meth:`to_dict`."""
        return cls.from_bytes(base64.b64decode(state["data"]))

    def __getstate__(self) -> bytes:
        return self.to_bytes()

    def __setstate__(self, blob: bytes) -> None:
        self._sketch = kll_doubles_sketch.deserialize(blob)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    # numpy.lib._function_base_impl._lerp: the same rounding as numpy.percentile.
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
