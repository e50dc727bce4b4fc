"""The fitted transforms written once, against a small "ops" adapter, for every engine.

The NumPy methods of :mod:`normcore.transforms.fitted` are the reference. This module
states the same maps with a handful of primitives (``where``, ``is_finite``, ``log``,
``sqrt``, ``exp``, ``clip``, ``search``, ``gather``) plus the arithmetic and comparison
operators, so that the very same code

* evaluates on NumPy arrays with :data:`NUMPY_OPS` (tested against the reference), and
* builds native Spark ``Column`` expressions with the Spark adapter
  (``pipelines.spark.columns.SparkOps``): no Python runs per row.

``bind`` marks a value used several times: NumPy returns it as it is, an engine that
builds expression trees computes it once per row (Spark: an intermediate column), so
trees stay small and nothing is evaluated twice.

Every operation happens in the order of the reference, so linear transforms and the
uniform quantile transform give the same bits as the reference; the ``normal`` output
goes through :func:`ndtri` / :func:`ndtr` below (Cephes' algorithms, as SciPy uses),
which agree with SciPy's to a few ulps.

Notes
-----
The quantile map is NumPy's ``interp`` taken apart (``numpy/_core/src/multiarray/
compiled_base.c``): scikit-learn maps ``x`` to the mean of a forward and a backward
interpolation, which differ only on a run of tied quantiles. Deduplicating the quantiles
into *knots* makes one search enough: between two knots both interpolations share the
segment and its slope; on a knot they take its first and last rank, whose mean is
precomputed (:class:`QuantileTables`).

References
----------
.. [1] S. L. Moshier, Cephes Mathematical Library (``ndtri.c``, ``ndtr.c``), 3-clause
   BSD licence; the coefficients below are those of SciPy's ``scipy.special`` copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

import numpy as np

from normcore.transforms.fitted import BOUNDS_THRESHOLD, LinearTransform, QuantileTransform, normal_clip_bounds


class Ops(Protocol):
    """What an engine provides besides ``+ - * /``, comparisons and ``& | ~``.

    Values are the engine's own (NumPy arrays, Spark Columns) or Python scalars.
    """

    def bind(self, value: Any) -> Any:
        """``value``, computed once however often the result is used."""

    def where(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        """``if_true`` where ``condition`` holds, else ``if_false``."""

    def is_finite(self, x: Any) -> Any:
        """True for values that are neither NaN nor +-inf (null stays null)."""

    def log(self, x: Any) -> Any:
        """Natural logarithm."""

    def sqrt(self, x: Any) -> Any:
        """Square root."""

    def exp(self, x: Any) -> Any:
        """Exponential."""

    def clip(self, x: Any, low: float, high: float) -> Any:
        """``min(max(x, low), high)``."""

    def array(self, values: Sequence[float]) -> Any:
        """A constant array of float64 values."""

    def search(self, points: Any, x: Any) -> Any:
        """How many of the sorted ``points`` are ``<= x`` (``searchsorted(..., "right")``)."""

    def gather(self, values: Any, index: Any) -> Any:
        """``values[index]``; an index out of range may give any value (it is never used)."""


class NumpyOps:
    """:class:`Ops` on NumPy float64 arrays (warnings of unused branches silenced)."""

    def bind(self, value: Any) -> Any:
        return value

    def where(self, condition: Any, if_true: Any, if_false: Any) -> np.ndarray:
        return np.where(condition, if_true, if_false)

    def is_finite(self, x: Any) -> np.ndarray:
        return np.isfinite(x)

    def log(self, x: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def sqrt(self, x: Any) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    def exp(self, x: Any) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(x)

    def clip(self, x: Any, low: float, high: float) -> np.ndarray:
        return np.clip(x, low, high)

    def array(self, values: Sequence[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def search(self, points: Any, x: Any) -> np.ndarray:
        return np.searchsorted(points, x, side="right")

    def gather(self, values: Any, index: Any) -> np.ndarray:
        return np.take(values, index, mode="clip")


#: The NumPy adapter.
NUMPY_OPS = NumpyOps()


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


# ------------------------------------------------------------- normal distribution

_SQRT_2PI = 2.50662827463100050242e0
_EXP_MINUS_2 = 0.13533528323661269189
_SQRT1_2 = 0.70710678118654752440
_MAXLOG = 7.09782712893383996843e2

# ndtri: central region |p - 0.5| <= 3/8, then sqrt(-2 log p) in [2, 8) and [8, 64).
_NDTRI_P0 = (
    -5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1,
    1.39312609387279679503e1, -1.23916583867381258016e0,
)  # fmt: skip
_NDTRI_Q0 = (
    1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
    -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1,
    1.59056225126211695515e1, -1.18331621121330003142e0,
)  # fmt: skip
_NDTRI_P1 = (
    4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1,
    4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0,
    -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4,
)  # fmt: skip
_NDTRI_Q1 = (
    1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
    1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1,
    -3.80806407691578277194e-2, -9.33259480895457427372e-4,
)  # fmt: skip
_NDTRI_P2 = (
    3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0,
    1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2,
    3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9,
)  # fmt: skip
_NDTRI_Q2 = (
    6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
    2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4,
    2.89247864745380683936e-6, 6.79019408009981274425e-9,
)  # fmt: skip

# erfc on [1, 8) (P / Q) and [8, inf) (R / S); erf on [0, 1] (T / U).
_ERFC_P = (
    2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
    4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
    9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2,
)  # fmt: skip
_ERFC_Q = (
    1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
    9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
    1.65666309194161350182e3, 5.57535340817727675546e2,
)  # fmt: skip
_ERFC_R = (
    5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
    6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0,
)  # fmt: skip
_ERFC_S = (
    2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
    1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0,
)  # fmt: skip
_ERF_T = (
    9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
    7.00332514112805075473e3, 5.55923013010394962768e4,
)  # fmt: skip
_ERF_U = (
    3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
    2.26290000613890934246e4, 4.92673942608635921086e4,
)  # fmt: skip


def _polevl(x: Any, coefficients: Sequence[float]) -> Any:
    # Horner's rule, highest degree first (Cephes' polevl).
    result: Any = coefficients[0]
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def _p1evl(x: Any, coefficients: Sequence[float]) -> Any:
    # Horner's rule with an implicit leading coefficient of 1 (Cephes' p1evl).
    result = x + coefficients[0]
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def ndtri(p: Any, ops: Ops) -> Any:
    """Inverse of the standard normal CDF (Cephes' ``ndtri``) for ``p`` in [0, 1].

    ``ndtri(0) = -inf``, ``ndtri(1) = +inf``; relative error ~1e-16 (the same algorithm
    as ``scipy.special.ndtri``). ``p`` is used several times: pass a bound value.
    """
    flipped = p > 1.0 - _EXP_MINUS_2
    tail_p = ops.bind(ops.where(flipped, 1.0 - p, p))
    centred = tail_p - 0.5
    squared = ops.bind(centred * centred)
    central = (centred + centred * (squared * _polevl(squared, _NDTRI_P0) / _p1evl(squared, _NDTRI_Q0))) * _SQRT_2PI
    root = ops.bind(ops.sqrt(-2.0 * ops.log(tail_p)))
    start = root - ops.log(root) / root
    inverse_root = ops.bind(1.0 / root)
    correction = ops.where(
        root < 8.0,
        inverse_root * _polevl(inverse_root, _NDTRI_P1) / _p1evl(inverse_root, _NDTRI_Q1),
        inverse_root * _polevl(inverse_root, _NDTRI_P2) / _p1evl(inverse_root, _NDTRI_Q2),
    )
    tail = start - correction
    tail = ops.where(flipped, tail, -tail)
    return ops.where(
        p == 0.0, -math.inf, ops.where(p == 1.0, math.inf, ops.where(tail_p > _EXP_MINUS_2, central, tail))
    )


def _erf_small(x: Any, ops: Ops) -> Any:
    # erf for |x| <= 1 (odd in x, so no branch on the sign).
    squared = ops.bind(x * x)
    return x * _polevl(squared, _ERF_T) / _p1evl(squared, _ERF_U)


def _erfc_positive(z: Any, ops: Ops) -> Any:
    # erfc for z >= 0.
    exponent = -z * z
    scaled = ops.exp(exponent) * ops.where(z < 8.0, _polevl(z, _ERFC_P), _polevl(z, _ERFC_R))
    tail = scaled / ops.where(z < 8.0, _p1evl(z, _ERFC_Q), _p1evl(z, _ERFC_S))
    tail = ops.where(exponent < -_MAXLOG, 0.0, tail)
    return ops.where(z < 1.0, 1.0 - _erf_small(z, ops), tail)


def ndtr(x: Any, ops: Ops) -> Any:
    """Standard normal CDF (Cephes' ``ndtr``, as ``scipy.special.ndtr``)."""
    scaled = ops.bind(x * _SQRT1_2)
    magnitude = ops.bind(ops.where(scaled < 0.0, -scaled, scaled))
    half_tail = 0.5 * _erfc_positive(magnitude, ops)
    return ops.where(
        magnitude < _SQRT1_2,
        0.5 + 0.5 * _erf_small(scaled, ops),
        ops.where(scaled > 0.0, 1.0 - half_tail, half_tail),
    )


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
