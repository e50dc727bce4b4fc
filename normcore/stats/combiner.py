"""Engine-agnostic combiner over record batches: the one contract every engine uses.

The local engine loops ``add_batch`` over a dataset; the Beam ``CombineFn`` and the
Spark per-partition function delegate to the same four calls
(``create_accumulator`` / ``add_batch`` / ``merge_accumulators`` / ``compact``) and
ship accumulators as :meth:`StatsAccumulator.to_dict` (JSON-safe, no pickle).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from normcore.arrays import float64_values
from normcore.errors import InputError
from normcore.keys import key_groups
from normcore.stats.moments import MomentsState
from normcore.stats.quantiles import DEFAULT_SKETCH_K, QuantileSketch
from normcore.stats.requests import ColumnRequest
from normcore.stats.search import SearchState

#: What ``add_batch`` accepts: an Arrow batch / table or a mapping of column name
#: to an Arrow array or a NumPy array.
Batch = pa.RecordBatch | pa.Table | Mapping[str, Any]


class ColumnStats:
    """Moments (always), a quantile sketch and a search state (on request) of one column."""

    __slots__ = ("moments", "sketch", "search")

    def __init__(self, moments: MomentsState, sketch: QuantileSketch | None, search: SearchState | None = None) -> None:
        self.moments = moments
        self.sketch = sketch
        self.search = search

    @classmethod
    def create(cls, request: ColumnRequest) -> ColumnStats:
        """An empty state for ``request``."""
        sketch = QuantileSketch(request.sketch_k or DEFAULT_SKETCH_K) if request.quantiles else None
        return cls(MomentsState(), sketch, SearchState() if request.search is not None else None)

    def add_column(
        self,
        column: pa.Array | pa.ChunkedArray | np.ndarray,
        request: ColumnRequest,
        key: str | None = None,
    ) -> None:
        """Fold one column batch (any integer or float type; nulls counted) as ``request``
        says; ``key`` is the key value of these rows (per-key searches)."""
        for values, nulls in _float64_chunks(column, request.name):
            if request.value_map is not None:
                finite = np.isfinite(values)
                values = values.copy()
                with np.errstate(all="ignore"):
                    values[finite] = request.value_map(values[finite])
            self.moments.add_nulls(nulls)
            self.moments.add_values(values)
            if self.sketch is None and self.search is None:
                continue
            finite_values = values[np.isfinite(values)]
            if self.sketch is not None:
                self.sketch.add_values(finite_values)
            if self.search is not None:
                with np.errstate(all="ignore"):
                    self.search.add_values(finite_values, request.search, key)

    def merge(self, other: ColumnStats) -> ColumnStats:
        """Fold ``other`` into this state."""
        self.moments.merge(other.moments)
        if self.sketch is not None and other.sketch is not None:
            self.sketch.merge(other.sketch)
        if other.search is not None:
            self.search = (self.search or SearchState()).merge(other.search)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state."""
        return {
            "moments": self.moments.to_dict(),
            "sketch": None if self.sketch is None else self.sketch.to_dict(),
            "search": None if self.search is None else self.search.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ColumnStats:
        """Inverse of :meth:`to_dict`."""
        sketch, search = state.get("sketch"), state.get("search")
        return cls(
            MomentsState.from_dict(state["moments"]),
            None if sketch is None else QuantileSketch.from_dict(sketch),
            None if search is None else SearchState.from_dict(search),
        )


class ColumnsAccumulator:
    """Rows seen and one mergeable state per column: the accumulator of a combiner.

    Subclasses set :attr:`state_type`, a class with ``merge``, ``to_dict`` and
    ``from_dict``. Accumulators travel as :meth:`to_dict` / :meth:`to_json` (JSON-safe,
    no pickle of native objects); pickling goes through the same dict.
    """

    __slots__ = ("rows", "columns")
    state_type: ClassVar[type]

    def __init__(self, rows: int, columns: dict[str, Any]) -> None:
        self.rows = rows
        self.columns = columns

    def merge(self, other: ColumnsAccumulator) -> ColumnsAccumulator:
        """Fold ``other`` into this accumulator (``other`` is left unchanged)."""
        self.rows += other.rows
        for name, state in other.columns.items():
            self.columns[name].merge(state)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: ``{"rows": n, "columns": {name: state.to_dict()}}``."""
        return {"rows": self.rows, "columns": {n: c.to_dict() for n, c in self.columns.items()}}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ColumnsAccumulator:
        """Inverse of :meth:`to_dict`."""
        return cls(int(state["rows"]), {n: cls.state_type.from_dict(c) for n, c in state["columns"].items()})

    def to_json(self) -> str:
        """The compact JSON text of :meth:`to_dict` (what travels between tasks and processes)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ColumnsAccumulator:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = self.from_dict(state)
        self.rows = restored.rows
        self.columns = restored.columns


class StatsAccumulator(ColumnsAccumulator):
    """Row count and per-column :class:`ColumnStats` of a set of batches."""

    __slots__ = ()
    state_type = ColumnStats


class Combiner:
    """The combiner contract every engine drives (Apache Beam's ``CombineFn``):
    ``create_accumulator``, ``add_batch`` (may mutate its accumulator),
    ``merge_accumulators`` (mutates and returns only the first one; an empty accumulator
    is an identity) and ``compact`` (what travels)."""

    def create_accumulator(self) -> ColumnsAccumulator:
        """An empty accumulator."""
        raise NotImplementedError

    def merge_accumulators(self, accumulators: Iterable[ColumnsAccumulator]) -> ColumnsAccumulator:
        """Merge into the first accumulator of ``accumulators`` and return it."""
        iterator = iter(accumulators)
        merged = next(iterator, None)
        if merged is None:
            return self.create_accumulator()
        for accumulator in iterator:
            merged.merge(accumulator)
        return merged

    def compact(self, accumulator: ColumnsAccumulator) -> ColumnsAccumulator:
        """Return the accumulator as it should travel (already minimal)."""
        return accumulator


class FeatureStatsCombiner(Combiner):
    """Accumulates :class:`ColumnStats` for a fixed list of columns.

    Parameters
    ----------
    requests : sequence of ColumnRequest
        The columns and what to gather for each.

    Notes
    -----
    The contract follows Apache Beam's ``CombineFn``: ``add_batch`` may mutate
    its accumulator; ``merge_accumulators`` mutates and returns only the first
    one; an empty accumulator is an identity for merging.
    """

    def __init__(self, requests: Sequence[ColumnRequest]) -> None:
        self.requests = tuple(requests)

    def create_accumulator(self) -> StatsAccumulator:
        """An empty accumulator."""
        return StatsAccumulator(0, {r.name: ColumnStats.create(r) for r in self.requests})

    def add_batch(self, accumulator: StatsAccumulator, batch: Batch, key: str | None = None) -> StatsAccumulator:
        """Fold one batch (an Arrow ``RecordBatch`` / ``Table`` or a column mapping) whose
        rows have key value ``key`` (None: no key, or a null key)."""
        accumulator.rows += _num_rows(batch)
        for request in self.requests:
            accumulator.columns[request.name].add_column(_column(batch, request.name), request, key)
        return accumulator


KeyedStats = dict[str | None, StatsAccumulator]


def fold_batches(
    combiner: FeatureStatsCombiner,
    batches: Iterable[pa.RecordBatch],
    key: str | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """Fold a stream of batches: the one loop every engine's tasks run.

    Parameters
    ----------
    combiner : FeatureStatsCombiner
    batches : iterable of pyarrow.RecordBatch
    key : str, optional
        Key column: statistics per key value too (named by :mod:`normcore.keys`; rows
        with a null key go to the ``None`` entry).
    advance : callable, optional
        Called with each batch's row count (progress).

    Returns
    -------
    (StatsAccumulator, dict or None)
        Statistics over every row and, with a key, per key value; the first is then
        the merge of the second.
    """
    if key is None:
        accumulator = combiner.create_accumulator()
        for batch in batches:
            combiner.add_batch(accumulator, batch)
            if advance is not None:
                advance(batch.num_rows)
        return accumulator, None
    keyed: KeyedStats = {}
    for batch in batches:
        for value, rows in key_groups(batch.column(key)):
            if value not in keyed:
                keyed[value] = combiner.create_accumulator()
            combiner.add_batch(keyed[value], batch.take(pa.array(rows)), value)
        if advance is not None:
            advance(batch.num_rows)
    return merge_keyed(combiner, keyed), keyed


def merge_folds(
    combiner: FeatureStatsCombiner, folds: Iterable[tuple[StatsAccumulator, KeyedStats | None]], key: str | None
) -> tuple[StatsAccumulator, KeyedStats | None]:
    """Merge the :func:`fold_batches` results of consecutive shares of the data, in the order
    given (so the result depends on the shares, not on who folded them): the result of one
    fold over all of them, as far as merging is exact."""
    if key is None:
        return combiner.merge_accumulators(accumulator for accumulator, _ in folds), None
    keyed: KeyedStats = {}
    for _, share in folds:
        for value, state in share.items():
            if value in keyed:
                keyed[value].merge(state)
            else:
                keyed[value] = state
    return merge_keyed(combiner, keyed), keyed


def merge_keyed(combiner: FeatureStatsCombiner, keyed: Mapping[str | None, StatsAccumulator]) -> StatsAccumulator:
    """The statistics over every row of a keyed fold: the merge of every key's, null key included."""
    return combiner.merge_accumulators([combiner.create_accumulator(), *keyed.values()])


def _num_rows(batch: Batch) -> int:
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return batch.num_rows
    first = next(iter(batch.values()), None)
    return 0 if first is None else len(first)


def _column(batch: Batch, name: str) -> Any:
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        index = batch.schema.get_field_index(name)
        if index < 0:
            raise InputError(f"column '{name}' is missing from the batch")
        return batch.column(index)
    if name not in batch:
        raise InputError(f"column '{name}' is missing from the batch")
    return batch[name]


def _float64_chunks(column: Any, name: str) -> Iterable[tuple[np.ndarray, int]]:
    """Yield ``(float64 values without nulls, null count)`` per chunk of ``column``."""
    if isinstance(column, pa.ChunkedArray):
        for chunk in column.chunks:
            yield from _float64_chunks(chunk, name)
        return
    if isinstance(column, pa.Array):
        yield as_float64(column, name), column.null_count
        return
    array = np.asarray(column)
    if array.dtype.kind not in "iuf":
        raise InputError(f"column '{name}' has type {array.dtype}, expected an integer or float type")
    yield np.ascontiguousarray(array, dtype=np.float64).reshape(-1), 0


def as_float64(array: pa.Array, name: str) -> np.ndarray:
    """The non-null values of an Arrow integer / float array as contiguous float64.

    Parameters
    ----------
    array : pyarrow.Array
        Integer (any width) or floating (16/32/64-bit) values.
    name : str
        Column name, for the error message.

    Returns
    -------
    ndarray of float64, shape (n_valid,)
        Zero-copy for a float64 array without nulls.
    """
    kind = array.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise InputError(f"column '{name}' has type {kind}, expected an integer or float type")
    if array.null_count:
        array = array.drop_null()
    if not pa.types.is_float64(kind):
        import pyarrow.compute as pc  # ~30 ms of start-up, paid only where a column needs a cast

        array = pc.cast(array, pa.float64(), safe=False)
    return float64_values(array)
