"""What statistics a method asks of a column: :class:`ColumnRequest`.

Kept apart from :mod:`normcore.stats.combiner` (which reads Arrow batches) so that the
method objects, and an artifact being loaded, need neither pyarrow nor the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from normcore.stats.quantiles import DEFAULT_SKETCH_K
from normcore.stats.search import SearchRequest


@dataclass(frozen=True)
class ColumnRequest:
    """Which statistics to gather for one column.

    Parameters
    ----------
    name : str
        Column name in the batches.
    quantiles : bool, default False
        Also keep a KLL quantile sketch (needed by ``robust`` and ``quantile``).
    sketch_k : int or None, default 2048
        KLL ``k`` when ``quantiles`` is set (None: the default).
    value_map : callable, optional
        ``value_map(values) -> values`` applied to the finite values before any statistic
        is gathered (the ``log`` method's statistics are those of the mapped values).
        Values it maps to NaN or +-inf are counted as such.
    search : SearchRequest, optional
        A pass of a parameter search (:mod:`normcore.stats.search`).
    """

    name: str
    quantiles: bool = False
    sketch_k: int | None = DEFAULT_SKETCH_K
    value_map: Callable[[np.ndarray], np.ndarray] | None = None
    search: SearchRequest | None = None
