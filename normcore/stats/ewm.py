"""Exponentially weighted moments: running statistics for online normalization.

Streaming jobs whose data drift slowly can normalize each new batch with statistics
that forget the past at a fixed rate instead of with a frozen artifact. This module
holds the statistics (:class:`EwmMoments`, a :class:`~normcore.stats.MomentsState` whose
weights decay); :class:`normcore.running.EwmNormalizer` applies them, and the Beam wrapper
(``pipelines.beam.RunningNormalize``) only keeps one in per-key state.

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
from dataclasses import dataclass

import numpy as np

from normcore.errors import ConfigError
from normcore.stats.moments import MomentsState, chan_merge


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
class EwmMoments(MomentsState):
    """Exponentially weighted mean and variance of one column: a
    :class:`~normcore.stats.MomentsState` whose ``mean_dev`` and ``m2`` are weighted.

    Attributes
    ----------
    alpha : float
        Smoothing factor, ``0 < alpha <= 1`` (1 keeps only the newest value).
    weight : float
        ``sum(w_i)``; the newest value weighs 1.

    Notes
    -----
    ``count``, the null / NaN / inf counts, ``min``, ``max`` and ``pivot`` (the first
    finite value, so sums run over deviation-sized numbers at any offset) are those of
    :class:`~normcore.stats.MomentsState`; ``mean_dev`` is the weighted mean of
    ``x - pivot`` and ``m2`` is ``sum(w_i (x_i - mean) ** 2)``.

    * ``add_values`` and ``merge`` mutate and return ``self``.
    * ``a.merge(b)`` means "the values of ``b`` came after those of ``a``": merging is
      associative but not commutative, and an empty state is an identity on both sides.
    * Folding values in blocks gives the same state as one value at a time (up to
      rounding), which is what lets a stream be cut into batches anywhere.
    """

    alpha: float = 1.0
    weight: float = 0.0

    @classmethod
    def create(cls, alpha: float) -> EwmMoments:
        """An empty state with smoothing factor ``alpha`` (checked)."""
        return cls(alpha=check_alpha(alpha))

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
        self._append(finite.size, block_weight, block_mean_dev, block_m2, float(finite.min()), float(finite.max()))
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
        mean_dev = (later.pivot - self.pivot) + later.mean_dev
        self._append(later.count, later.weight, mean_dev, later.m2, later.min, later.max)
        return self

    def _append(self, count: int, weight: float, mean_dev: float, m2: float, lo: float, hi: float) -> None:
        # Decay the old part by one factor per newer value, then Chan's weighted merge.
        decay = (1.0 - self.alpha) ** count if self.count else 0.0
        self.mean_dev, self.m2 = chan_merge(self.weight * decay, self.mean_dev, self.m2 * decay, weight, mean_dev, m2)
        self.weight = self.weight * decay + weight
        self.count += count
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def variance(self, ddof: int = 0) -> float:
        """Weighted population variance ``m2 / weight`` (NaN while empty; ``ddof`` must be 0)."""
        return self.m2 / self.weight if self.count else math.nan

    def std(self, ddof: int = 0) -> float:
        """``sqrt(variance())``."""
        return math.sqrt(self.variance())
