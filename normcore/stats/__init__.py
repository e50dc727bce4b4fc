"""Exact, mergeable per-column statistics (moments and quantile sketches)."""

from normcore.stats.combiner import (
    ColumnRequest,
    ColumnStats,
    FeatureStatsCombiner,
    KeyedStats,
    StatsAccumulator,
    as_float64,
    fold_batches,
    merge_folds,
    merge_keyed,
)
from normcore.stats.moments import MomentsState
from normcore.stats.quantiles import DEFAULT_SKETCH_K, QuantileSketch
from normcore.stats.search import SearchRequest, SearchState

__all__ = [
    "DEFAULT_SKETCH_K",
    "ColumnRequest",
    "ColumnStats",
    "FeatureStatsCombiner",
    "KeyedStats",
    "MomentsState",
    "QuantileSketch",
    "SearchRequest",
    "SearchState",
    "StatsAccumulator",
    "as_float64",
    "fold_batches",
    "merge_folds",
    "merge_keyed",
]
