"""Exact, mergeable per-column statistics (moments and quantile sketches).

Names are imported from their modules on first use (PEP 562), so reading an artifact
loads neither the moments kernel nor pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from normcore.lazy import lazy_attributes

#: Public name -> the module that defines it.
_LAZY = {
    "ColumnRequest": "normcore.stats.requests",
    "ColumnStats": "normcore.stats.combiner",
    "FeatureStatsCombiner": "normcore.stats.combiner",
    "KeyedStats": "normcore.stats.combiner",
    "StatsAccumulator": "normcore.stats.combiner",
    "as_float64": "normcore.stats.combiner",
    "fold_batches": "normcore.stats.combiner",
    "merge_folds": "normcore.stats.combiner",
    "merge_keyed": "normcore.stats.combiner",
    "MomentsState": "normcore.stats.moments",
    "DEFAULT_SKETCH_K": "normcore.stats.quantiles",
    "QuantileSketch": "normcore.stats.quantiles",
    "SearchRequest": "normcore.stats.search",
    "SearchState": "normcore.stats.search",
}

if TYPE_CHECKING:
    from normcore.stats.combiner import (
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
    from normcore.stats.requests import ColumnRequest
    from normcore.stats.search import SearchRequest, SearchState


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "ColumnRequest",
    "ColumnStats",
    "DEFAULT_SKETCH_K",
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
