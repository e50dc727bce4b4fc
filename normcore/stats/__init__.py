"""Exact, mergeable per-column statistics (moments and quantile sketches)."""

from normcore.stats.combiner import (
    ColumnRequest,
    ColumnStats,
    FeatureStatsCombiner,
    StatsAccumulator,
    as_float64,
)
from normcore.stats.moments import MomentsState
from normcore.stats.quantiles import DEFAULT_SKETCH_K, QuantileSketch

__all__ = [
    "DEFAULT_SKETCH_K",
    "ColumnRequest",
    "ColumnStats",
    "FeatureStatsCombiner",
    "MomentsState",
    "QuantileSketch",
    "StatsAccumulator",
    "as_float64",
]
