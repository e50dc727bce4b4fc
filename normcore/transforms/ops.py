"""The operations adapter: what a formula needs from an engine, and functions built on it.

Transforms are written once against :class:`Ops` (``where``, ``is_finite``, ``log``,
``sqrt``, ``exp``, ``clip``, ``clip_finite``, ``search``, ``gather``, ``bind``) plus the
arithmetic and comparison operators. :data:`NUMPY_OPS` evaluates them on NumPy arrays; the Spark adapter
(``pipelines.spark.columns.SparkOps``) builds native ``Column`` expressions from the same
code. :func:`ndtri` and :func:`ndtr` (the standard normal quantile function and CDF) are
written against it too, so every engine evaluates the very same algorithm.

References
----------
.. [1] S. L. Moshier, Cephes Mathematical Library (``ndtri.c``, ``ndtr.c``), 3-clause
   BSD licence; the coefficients below are those of SciPy's ``scipy.special`` copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


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

    def log1p(self, x: Any) -> Any:
        """``log(1 + x)``, accurate for small ``x``."""

    def expm1(self, x: Any) -> Any:
        """``exp(x) - 1``, accurate for small ``x``."""

    def abs(self, x: Any) -> Any:
        """Absolute value."""

    def sign(self, x: Any) -> Any:
        """-1, 0 or 1 (as floats)."""

    def clip(self, x: Any, low: float, high: float) -> Any:
        """``min(max(x, low), high)``."""

    def clip_finite(self, y: Any, x: Any, low: Any, high: Any) -> Any:
        """``clip(y, low, high)`` where ``x`` is finite, else ``x`` itself: the tail of a
        formula that leaves NaN and +-inf inputs as they are.

        ``y`` is a value the formula computed from ``x``, non-finite wherever ``x`` is
        (arithmetic on ``x`` with finite operands), and the adapter may overwrite it.
        """

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

    def where(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        if isinstance(condition, bool):  # a test on fitted numbers
            return if_true if condition else if_false
        if (
            isinstance(if_true, np.ndarray)
            and np.shape(condition) == if_true.shape
            and np.count_nonzero(condition) == if_true.size
        ):
            return if_true  # the common case (every value finite): no third array
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

    def log1p(self, x: Any) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log1p(x)

    def expm1(self, x: Any) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.expm1(x)

    def abs(self, x: Any) -> np.ndarray:
        return np.abs(x)

    def sign(self, x: Any) -> np.ndarray:
        return np.sign(x)

    def clip(self, x: Any, low: Any, high: Any) -> np.ndarray:
        return x.clip(low, high) if isinstance(x, np.ndarray) else np.clip(x, low, high)  # the method: no dispatch

    def clip_finite(self, y: Any, x: Any, low: Any, high: Any) -> Any:
        # A finite sum of y proves every y finite (NaN and +-inf propagate into a sum), and
        # with it every x: one reduction instead of a mask, its count and a copy. Then
        # saturation bounds cannot change y, and other bounds clip it in place. (The sum may
        # overflow: formulas run under the evaluators' np.errstate, as their arithmetic does.)
        # Up to _SMALL values, Python's sum of the list is the cheaper reduction (a row of
        # features: 0.2 us against NumPy's 0.9 us call overhead).
        if isinstance(y, np.ndarray) and y.dtype == np.float64 and y.flags.writeable:
            total = sum(y.ravel().tolist()) if y.size <= _SMALL else np.add.reduce(y, axis=None)
            if math.isfinite(total):
                if type(low) is float and type(high) is float and -low == high == _FLOAT_MAX:
                    return y
                return np.clip(y, low, high, out=y)
        return self.where(self.is_finite(x), self.clip(y, low, high), x)

    def array(self, values: Sequence[float]) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def search(self, points: Any, x: Any) -> np.ndarray:
        return np.searchsorted(points, x, side="right")

    def gather(self, values: Any, index: Any) -> np.ndarray:
        return np.take(values, index, mode="clip")


_FLOAT_MAX = float(np.finfo(np.float64).max)
#: Largest array whose finiteness clip_finite checks by a Python sum of its values.
_SMALL = 32

#: The NumPy adapter.
NUMPY_OPS = NumpyOps()


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
