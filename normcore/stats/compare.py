"""Distances between two sets of statistics of one column (drift metrics).

Every engine that compares new data with a fitted artifact (``normcore drift``,
Beam's windowed statistics) calls these functions; the formulas live only here.
Statistics are passed as the artifact's ``stats`` mappings (``count``, ``mean``,
``var`` with ddof 0, ...), which :meth:`MomentsState.summary` also returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from normcore.stats.quantiles import QuantileSketch

#: Floor for bin fractions in the PSI, so an empty bin gives a large finite term.
PSI_EPSILON = 1e-4


def standardized_mean_shift(reference: Mapping[str, Any], current: Mapping[str, Any]) -> float:
    """``(mean_current - mean_reference) / std_reference``.

    A zero reference std gives 0 when the means are equal and +-inf otherwise.
    """
    shift = float(current["mean"]) - float(reference["mean"])
    std = math.sqrt(float(reference["var"]))
    if std > 0:
        return shift / std
    return 0.0 if shift == 0 else math.copysign(math.inf, shift)


def variance_ratio(reference: Mapping[str, Any], current: Mapping[str, Any]) -> float:
    """``var_current / var_reference`` (ddof 0); 1 when both are zero, inf when only the reference is."""
    new, old = float(current["var"]), float(reference["var"])
    if old > 0:
        return new / old
    return 1.0 if new == 0 else math.inf


def psi_bin_edges(reference: QuantileSketch, bins: int = 10) -> np.ndarray:
    """Inner edges of ``bins`` equal-mass bins of the reference distribution (deduplicated)."""
    percents = np.linspace(0, 100, bins + 1)[1:-1]
    return np.unique(reference.percentiles(percents))


def population_stability_index(reference: QuantileSketch, current: QuantileSketch, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference`` over the reference's quantile bins.

    ``PSI = sum((a - e) * ln(a / e))`` with ``e`` / ``a`` the reference / current
    fraction of values in each bin, both floored at :data:`PSI_EPSILON`. Rules of
    thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
    """
    edges = psi_bin_edges(reference, bins)
    expected = np.diff(reference.cdf(edges), prepend=0.0)
    actual = np.diff(current.cdf(edges), prepend=0.0)
    expected = np.maximum(expected, PSI_EPSILON)
    actual = np.maximum(actual, PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
