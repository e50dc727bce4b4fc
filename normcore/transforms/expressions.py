"""The fitted transforms written once, against the operations adapter, for every engine.

The NumPy methods of :mod:`normcore.transforms.fitted` are the reference. This module
states the same maps with the primitives of :class:`~normcore.transforms.ops.Ops`, so
that the very same code

* evaluates on NumPy arrays with :data:`~normcore.transforms.ops.NUMPY_OPS` (tested
  against the reference), and
* builds native Spark ``Column`` expressions with the Spark adapter
  (``pipelines.spark.columns.SparkOps``): no Python runs per row.

``bind`` marks a value used several times: NumPy returns it as it is, an engine that
builds expression trees computes it once per row (Spark: an intermediate column), so
trees stay small and nothing is evaluated twice.

Every operation happens in the order of the reference, so both give the same bits.

Notes
-----
The quantile map is NumPy's ``interp`` taken apart (``numpy/_core/src/multiarray/
compiled_base.c``): scikit-learn maps ``x`` to the mean of a forward and a backward
interpolation, which differ only on a run of tied quantiles. Deduplicating the quantiles
into *knots* makes one search enough: between two knots both interpolations share the
segment and its slope; on a knot they take its first and last rank, whose mean is
precomputed (:class:`QuantileTables`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from normcore.transforms.fitted import BOUNDS_THRESHOLD, LinearTransform, QuantileTransform, normal_clip_bounds
from normcore.transforms.ops import NUMPY_OPS, Ops, ndtr, ndtri

__all__ = ["NUMPY_OPS", "Ops", "forward_expression", "inverse_expression", "ndtr", "ndtri"]


# --------------------------------------------------------------------------- linear


def linear_forward(x: Any, shift: Any, scale: Any, offset: Any, clip: tuple[float, float] | None, ops: Ops) -> Any:
    """``(x - shift) / scale + offset``, clipped to ``clip``; non-finite ``x`` unchanged.

    Parameters may be scalars or engine values (per-row parameters of a keyed apply).
    """
    y = (x - shift) / scale + offset
    if clip is not None:
        y = ops.clip(y, clip[0], clip[1])
    return ops.where(ops.is_finite(x), y, x)


def linear_inverse(y: Any, shift: Any, scale: Any, offset: Any, ops: Ops) -> Any:
    """``(y - offset) * scale + shift``; non-finite ``y`` unchanged."""
    x = (y - offset) * scale + shift
    return ops.where(ops.is_finite(y), x, y)


# ------------------------------------------------------------------------- quantile


@dataclass(frozen=True)
class QuantileTables:
    """Lookup tables of a :class:`QuantileTransform`, precomputed once per fit.

    ``m`` is the number of distinct quantiles (*knots*), ``n`` the number of quantiles.
    Field values are Python numbers and tuples from :func:`quantile_tables`, or engine
    values (arrays, per-row Columns) of the same meaning.

    Attributes
    ----------
    knots : (m,) increasing distinct quantile values.
    knot_ranks : (m,) rank of a value equal to a knot: mean of the first and last
        reference of its run of tied quantiles.
    rank_low, rank_high : (max(m - 1, 1),) references at the two ends of the segment
        after each knot (the last of its run, the first of the next knot's run).
    slopes : (max(m - 1, 1),) forward slope of each segment (NumPy's ``interp`` slope).
    knot_count : m.
    low, high : first and last quantile.
    first_rank, last_rank : first and last reference.
    references : (n,) the references (inverse map: the sorted search points).
    quantiles : (n,) the quantiles (inverse map: the values).
    inverse_slopes : (max(n - 1, 1),) slope of the inverse map on each segment.
    point_count : n.
    """

    knots: Any
    knot_ranks: Any
    rank_low: Any
    rank_high: Any
    slopes: Any
    knot_count: Any
    low: Any
    high: Any
    first_rank: Any
    last_rank: Any
    references: Any
    quantiles: Any
    inverse_slopes: Any
    point_count: Any

    #: Fields holding arrays (the others hold scalars).
    ARRAYS: ClassVar[tuple[str, ...]] = (
        "knots", "knot_ranks", "rank_low", "rank_high", "slopes", "references", "quantiles", "inverse_slopes",
    )  # fmt: skip

    def as_arrays(self, ops: Ops) -> QuantileTables:
        """The same tables with their array fields as ``ops`` constant arrays."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return QuantileTables(**{name: ops.array(v) if name in self.ARRAYS else v for name, v in values.items()})


def _slopes(rise: np.ndarray, run: np.ndarray) -> tuple[float, ...]:
    # NumPy's interp slope (fp[j+1] - fp[j]) / (xp[j+1] - xp[j]) of each segment; a
    # segment of zero width is never interpolated on and stores 0. At least one entry.
    if run.size == 0:
        return (0.0,)
    with np.errstate(divide="ignore", invalid="ignore"):
        return tuple(np.where(run > 0, rise / np.where(run > 0, run, 1.0), 0.0).tolist())


def quantile_tables(transform: QuantileTransform) -> QuantileTables:
    """Precompute the lookup tables of ``transform`` (see :class:`QuantileTables`)."""
    quantiles = np.asarray(transform.quantiles, dtype=np.float64)
    references = np.asarray(transform.references, dtype=np.float64)
    knots, first = np.unique(quantiles, return_index=True)
    last = np.append(first[1:] - 1, quantiles.size - 1)
    knot_ranks = 0.5 * (references[last] + references[first])
    rank_low, rank_high = references[last[:-1]], references[first[1:]]
    padding = (0.0,) if knots.size == 1 else ()
    return QuantileTables(
        knots=tuple(knots.tolist()),
        knot_ranks=tuple(knot_ranks.tolist()),
        rank_low=tuple(rank_low.tolist()) + padding,
        rank_high=tuple(rank_high.tolist()) + padding,
        slopes=_slopes(rank_high - rank_low, np.diff(knots)),
        knot_count=int(knots.size),
        low=float(quantiles[0]),
        high=float(quantiles[-1]),
        first_rank=float(references[0]),
        last_rank=float(references[-1]),
        references=tuple(references.tolist()),
        quantiles=tuple(quantiles.tolist()),
        inverse_slopes=_slopes(np.diff(quantiles), np.diff(references)),
        point_count=int(references.size),
    )


def quantile_forward(x: Any, tables: QuantileTables, output: str, ops: Ops) -> Any:
    """scikit-learn's ``QuantileTransformer.transform`` of ``x``; non-finite ``x`` unchanged.

    Parameters
    ----------
    x : engine values
    tables : QuantileTables
        Array fields already as engine values (:meth:`QuantileTables.as_arrays`).
    output : {"uniform", "normal"}
    ops : Ops
    """
    count = ops.bind(ops.search(tables.knots, x))
    knot = count - 1
    lower = ops.bind(ops.gather(tables.knots, knot))
    upper = ops.gather(tables.knots, count)
    slope = ops.bind(ops.gather(tables.slopes, knot))
    forward = slope * (x - lower) + ops.gather(tables.rank_low, knot)
    backward = ops.gather(tables.rank_high, knot) - slope * (upper - x)
    mapped = ops.where(
        count == 0,
        tables.first_rank,
        ops.where(
            lower == x,
            ops.gather(tables.knot_ranks, knot),
            ops.where(count == tables.knot_count, tables.last_rank, 0.5 * (forward + backward)),
        ),
    )
    if output == "normal":
        at_low = x - BOUNDS_THRESHOLD < tables.low
        at_high = x + BOUNDS_THRESHOLD > tables.high
    else:
        at_low = x == tables.low
        at_high = x == tables.high
    mapped = ops.where(at_low, 0.0, ops.where(at_high, 1.0, mapped))
    if output == "normal":
        low, high = normal_clip_bounds()
        mapped = ops.clip(ndtri(ops.bind(mapped), ops), low, high)
    return ops.where(ops.is_finite(x), mapped, x)


def quantile_inverse(y: Any, tables: QuantileTables, output: str, ops: Ops) -> Any:
    """Inverse of :func:`quantile_forward` (NumPy ``interp`` of ranks); non-finite ``y`` unchanged."""
    if output == "normal":
        ranks = ops.bind(ndtr(y, ops))
        at_low = ranks - BOUNDS_THRESHOLD < 0.0
        at_high = ranks + BOUNDS_THRESHOLD > 1.0
    else:
        ranks = y
        at_low = ranks == 0.0
        at_high = ranks == 1.0
    count = ops.bind(ops.search(tables.references, ranks))
    point = count - 1
    reference = ops.bind(ops.gather(tables.references, point))
    value = ops.bind(ops.gather(tables.quantiles, point))
    interpolated = ops.gather(tables.inverse_slopes, point) * (ranks - reference) + value
    values = ops.where(
        count == 0,
        tables.low,
        ops.where(count == tables.point_count, tables.high, ops.where(reference == ranks, value, interpolated)),
    )
    values = ops.where(at_low, tables.low, ops.where(at_high, tables.high, values))
    return ops.where(ops.is_finite(y), values, y)


# ------------------------------------------------------------------------ dispatch


def forward_expression(transform: LinearTransform | QuantileTransform, x: Any, ops: Ops) -> Any:
    """``transform.forward`` of ``x`` built with ``ops`` (fitted parameters as constants)."""
    if isinstance(transform, LinearTransform):
        return linear_forward(x, transform.shift, transform.scale, transform.offset, transform.clip, ops)
    return quantile_forward(x, quantile_tables(transform).as_arrays(ops), transform.output, ops)


def inverse_expression(transform: LinearTransform | QuantileTransform, y: Any, ops: Ops) -> Any:
    """``transform.inverse`` of ``y`` built with ``ops`` (fitted parameters as constants)."""
    if isinstance(transform, LinearTransform):
        return linear_inverse(y, transform.shift, transform.scale, transform.offset, ops)
    return quantile_inverse(y, quantile_tables(transform).as_arrays(ops), transform.output, ops)
