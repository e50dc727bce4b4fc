"""Mergeable, deterministic quantile sketch (KLL) with NumPy-style interpolation.

Only features that need quantiles (``robust``, ``quantile``, ``--sketch``) pay for one.

The sketch is KLL (Karnin, Lang and Liberty, 2016) as Apache DataSketches lays it out:
levels of sorted items, an item at level ``h`` standing for ``2**h`` values, level
capacities shrinking by 2/3 from the top level (which holds ``k``) down to a minimum of 8.
When the items held exceed the levels' total capacity, the lowest full level is
*compacted*: sorted, and every other item (from an offset of 0 or 1) moves up a level.

Notes
-----
Determinism: KLL draws each compaction's offset at random; here it is a fixed
pseudo-random bit (splitmix64 of the sketch's compaction count), so the same values
added and merged in the same order give the same sketch, bit for bit, and two fits of
the same files give the same artifact. The bits do not depend on the data, which is
what KLL's analysis needs (data crafted against the fixed sequence could do worse).

Accuracy: rank queries are within :attr:`QuantileSketch.rank_error` (single-sided, the
99th percentile of the error; DataSketches' empirical bound ``2.296 / k**0.9723``,
0.14 % of the count at the default ``k = 2048``; the tests measure it on this
implementation). A sketch that never compacted (at most ``k`` values) holds every value
and is exact: its quantiles equal ``numpy.percentile(..., method="linear")`` to the last
bit. The minimum and maximum are always exact.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: Default KLL ``k``: 0.14 % rank error, exact up to ``k`` values, ~50 KB serialized.
DEFAULT_SKETCH_K = 2048
#: Accepted range of ``k``.
MIN_K, MAX_K = 8, 65535
#: Smallest capacity of a level.
MIN_LEVEL_CAPACITY = 8
#: The ``sketch`` tag of :meth:`QuantileSketch.to_dict`.
SKETCH_FORMAT = "normcore_kll"
#: Most levels a sketch can have (weights ``2**h`` stay within int64 for any count).
MAX_LEVELS = 62

_MASK = (1 << 64) - 1


def _offset_bit(compactions: int) -> int:
    """The offset of compaction number ``compactions``: a bit of splitmix64 of the count."""
    z = (compactions * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) & 1


def _sorted_stably(finite_values: np.ndarray) -> np.ndarray:
    """``np.sort(finite_values, kind="stable")``, bit for bit, at the speed of NumPy's
    unstable sort (2x faster on the level 0 of random values, where the sketch spends its
    time): among finite floats only ``0.0`` and ``-0.0`` compare equal with different bits,
    so the run of zeros is put back in its input order and everything else is where the
    stable sort puts it."""
    items = np.sort(finite_values)
    zeros = finite_values[finite_values == 0]
    if zeros.size:
        first = int(np.searchsorted(items, 0.0))
        items[first : first + zeros.size] = zeros
    return items


class QuantileSketch:
    """A deterministic KLL quantile sketch over the finite values of one column.

    Parameters
    ----------
    k : int, default 2048
        Size / accuracy trade-off (8 <= k <= 65535): capacity of the top level.

    Notes
    -----
    ``add_values`` and ``merge`` mutate and return ``self``. Merging sketches of
    different ``k`` keeps the smaller. Pickling goes through :meth:`to_dict`.
    """

    __slots__ = ("_k", "_levels", "_n", "_min", "_max", "_compactions")

    def __init__(self, k: int = DEFAULT_SKETCH_K) -> None:
        if not (isinstance(k, int) and MIN_K <= k <= MAX_K):
            raise ValueError(f"sketch k must be an integer in [{MIN_K}, {MAX_K}], got {k!r}")
        self._k = k
        self._levels: list[np.ndarray] = [np.empty(0, dtype=np.float64)]
        self._n = 0
        self._min = math.inf
        self._max = -math.inf
        self._compactions = 0

    @property
    def k(self) -> int:
        """The sketch's ``k`` parameter."""
        return self._k

    @property
    def n(self) -> int:
        """Values seen."""
        return self._n

    @property
    def is_exact(self) -> bool:
        """Whether the sketch still holds every value (it never compacted)."""
        return self._compactions == 0

    @property
    def rank_error(self) -> float:
        """Single-sided normalized rank error (0 while the sketch is exact)."""
        return 0.0 if self.is_exact else 2.296 / self._k**0.9723

    def add_values(self, finite_values: np.ndarray) -> QuantileSketch:
        """Add a float64 array that holds finite values only."""
        values = np.ascontiguousarray(finite_values, dtype=np.float64).reshape(-1)
        if values.size:
            self._n += int(values.size)
            self._min = min(self._min, float(values.min()))
            self._max = max(self._max, float(values.max()))
            self._levels[0] = np.concatenate([self._levels[0], values])
            self._compress()
        return self

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Fold ``other`` into this sketch (``other`` is left unchanged)."""
        if other._n == 0:
            return self
        self._k = min(self._k, other._k)
        while len(self._levels) < len(other._levels):
            self._levels.append(np.empty(0, dtype=np.float64))
        for height, items in enumerate(other._levels):
            merged = np.concatenate([self._levels[height], items])
            self._levels[height] = merged if height == 0 else np.sort(merged, kind="stable")
        self._n += other._n
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self._compactions += other._compactions
        self._compress()
        return self

    def mapped(self, increasing: Callable[[np.ndarray], np.ndarray]) -> QuantileSketch:
        """The sketch of ``increasing(x)`` for a non-decreasing map: every item (and the
        extremes) mapped, ranks unchanged, so its rank error is this sketch's."""
        sketch = QuantileSketch(self._k)
        sketch._levels = [np.asarray(increasing(level), dtype=np.float64) for level in self._levels]
        sketch._n, sketch._compactions = self._n, self._compactions
        if self._n:
            low, high = increasing(np.array([self._min, self._max]))
            sketch._min, sketch._max = float(low), float(high)
        return sketch

    def _capacity(self, height: int) -> int:
        depth = len(self._levels) - 1 - height
        return max(MIN_LEVEL_CAPACITY, int(self._k * (2.0 / 3.0) ** depth + 0.5))

    def _compress(self) -> None:
        # DataSketches' lazy rule: while more items are held than the levels can hold,
        # compact the lowest level at or above its capacity.
        while sum(level.size for level in self._levels) > sum(map(self._capacity, range(len(self._levels)))):
            height = next(h for h, level in enumerate(self._levels) if level.size >= self._capacity(h))
            if height == len(self._levels) - 1:
                self._levels.append(np.empty(0, dtype=np.float64))
            level = self._levels[height]  # level 0 unsorted, every level above sorted already
            items = _sorted_stably(level) if height == 0 else np.sort(level, kind="stable")
            kept = items.size % 2  # an odd item stays behind (the smallest)
            promoted = items[kept + _offset_bit(self._compactions) :: 2]
            self._compactions += 1
            self._levels[height] = items[:kept]
            self._levels[height + 1] = np.sort(np.concatenate([self._levels[height + 1], promoted]), kind="stable")

    def _sorted_view(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item held, sorted, and the cumulative weight up to and including each."""
        items = np.concatenate(self._levels)
        weights = np.concatenate([np.full(level.size, 1 << h, dtype=np.int64) for h, level in enumerate(self._levels)])
        order = np.argsort(items, kind="stable")
        return items[order], np.cumsum(weights[order])

    def percentiles(self, percents: np.ndarray | list[float]) -> np.ndarray:
        """Percentiles with NumPy's ``linear`` interpolation between order statistics.

        Parameters
        ----------
        percents : array-like of float in [0, 100]

        Returns
        -------
        ndarray of float64
            Exactly ``numpy.percentile(values, percents)`` while the sketch is exact;
            otherwise within :attr:`rank_error` in rank, except the 0th and 100th
            percentiles, which are always the exact min and max. NaN when empty.
        """
        q = np.asarray(percents, dtype=np.float64) / 100.0
        n = self._n
        if n == 0:
            return np.full(q.shape, math.nan)
        # NumPy's virtual index into the sorted values, then the order statistics on both
        # sides: order statistic i is the first item whose cumulative weight reaches i + 1.
        position = q * (n - 1)
        below = np.floor(position)
        above = np.minimum(below + 1, n - 1)
        indices = np.concatenate([below, above])
        items, cumulative = self._sorted_view()
        found = items[np.minimum(np.searchsorted(cumulative, indices + 1, side="left"), items.size - 1)]
        found[indices == 0] = self._min
        found[indices == n - 1] = self._max
        lower, upper = found[: q.size], found[q.size :]
        return _lerp(lower, upper, position - below)

    def cdf(self, split_points: np.ndarray | list[float]) -> np.ndarray:
        """Fraction of values ``<= split_points[i]`` for each (increasing) split point.

        Returns ``len(split_points) + 1`` cumulative fractions, the last being 1.
        NaN when empty.
        """
        points = np.asarray(split_points, dtype=np.float64)
        if self._n == 0:
            return np.full(points.size + 1, math.nan)
        items, cumulative = self._sorted_view()
        at = np.searchsorted(items, points, side="right")
        weights = np.where(at > 0, cumulative[np.maximum(at - 1, 0)], 0)
        return np.append(weights / self._n, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: format, ``k``, ``n``, rank error, extremes, level sizes and the
        items (base64 of little-endian float64, level by level)."""
        data = np.concatenate(self._levels).astype("<f8").tobytes()
        empty = self._n == 0
        return {
            "sketch": SKETCH_FORMAT,
            "k": self._k,
            "n": self._n,
            "normalized_rank_error": self.rank_error,
            "min": None if empty else self._min,
            "max": None if empty else self._max,
            "compactions": self._compactions,
            "levels": [int(level.size) for level in self._levels],
            "data": base64.b64encode(data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> QuantileSketch:
        """Inverse of :meth:`to_dict`; checks that the state is consistent.

        Raises
        ------
        ValueError
            A field is missing or of the wrong type, the items are not finite, not
            sorted within a level, outside ``[min, max]``, or their weights do not add
            up to ``n``. The message names the field.
        """
        if not isinstance(state, Mapping):
            raise ValueError("a sketch must be an object")
        if state.get("sketch") != SKETCH_FORMAT:
            raise ValueError(f"sketch: expected '{SKETCH_FORMAT}', got {state.get('sketch')!r}")
        sketch = cls(_integer(state, "k"))
        n, compactions = _integer(state, "n"), _integer(state, "compactions")
        sizes = state.get("levels")
        if not (isinstance(sizes, list) and 1 <= len(sizes) <= MAX_LEVELS):
            raise ValueError(f"levels: expected a list of 1 to {MAX_LEVELS} sizes")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes):
            raise ValueError("levels: sizes must be non-negative integers")
        try:
            data = base64.b64decode(str(state.get("data")), validate=True)
        except ValueError:
            raise ValueError("data: not valid base64") from None
        if len(data) != 8 * sum(sizes):
            raise ValueError(f"data: {len(data)} bytes for {sum(sizes)} items")
        items = np.frombuffer(data, dtype="<f8").astype(np.float64)
        if not np.all(np.isfinite(items)):
            raise ValueError("data: items must be finite")
        bounds = np.cumsum([0, *sizes])
        levels = [items[bounds[h] : bounds[h + 1]] for h in range(len(sizes))]
        if any(np.any(np.diff(level) < 0) for level in levels[1:]):
            raise ValueError("data: the items of a level above 0 must be sorted")
        if sum(size << h for h, size in enumerate(sizes)) != n:
            raise ValueError(f"n: the items' weights do not add up to {n}")
        if n:
            low, high = _number(state, "min"), _number(state, "max")
            if not low <= float(items.min()) <= float(items.max()) <= high:
                raise ValueError("min, max: the items must lie between them")
            sketch._min, sketch._max = low, high
        sketch._levels, sketch._n, sketch._compactions = levels, n, compactions
        return sketch

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = self.from_dict(state)
        for name in self.__slots__:
            setattr(self, name, getattr(restored, name))


def _integer(state: Mapping[str, Any], name: str) -> int:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _number(state: Mapping[str, Any], name: str) -> float:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    # numpy.lib._function_base_impl._lerp: the same rounding as numpy.percentile.
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
