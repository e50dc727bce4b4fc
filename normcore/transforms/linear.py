"""The linear methods: ``y = (x - shift) / scale + offset``, then clipped for ``minmax``.

``zscore``, ``minmax``, ``mean``, ``maxabs``, ``robust`` and ``identity`` differ only in how
``shift``, ``scale`` and ``offset`` are fitted; ``decimal`` divides in two steps so that
its ``10**j`` may exceed the float64 range. The inverse is ``x = (y - offset) * scale +
shift``. NaN and +-inf pass through; a finite value whose result would overflow
saturates at the float64 maximum (so no finite input gives a non-finite output).

Conventions
-----------
* ``zscore``: ``(x - mean) / std`` with ``std = sqrt(M2 / (n - ddof))``; ddof 0
  (population, scikit-learn / Keras) by default, 1 for Spark MLlib.
* A column with zero spread (zero variance, zero range, zero IQR, zero max|x|) is
  *constant*: its scale is 1 (as scikit-learn does), ``constant: true`` is recorded and
  a warning is raised by the caller. Spread is computed exactly, so a column is constant
  only when all its finite values are equal.
* ``decimal``: ``x / 10**j`` with ``j`` the smallest integer such that ``max|x| / 10**j <=
  1`` as computed (999 -> 3, 1000 -> 3, 0.005 -> -2, 0.01 -> -2, 0 -> 0), over the whole
  float64 range: beyond ``|j| = 300`` the division takes two steps, so ``10**j`` need not be
  a float64 (denormals and 1.7e308 included).
* Methods that subtract a shift refuse (:class:`~normcore.transforms.base.FitRefused`)
  a column whose range ``max - min`` overflows float64: ``x - shift`` could not be
  represented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from normcore.errors import ArtifactError
from normcore.stats import DEFAULT_SKETCH_K
from normcore.transforms.base import (
    FLOAT_MAX,
    FitRefused,
    FitResult,
    Method,
    MethodParams,
    Stack,
    finite_number,
    register,
)
from normcore.transforms.ops import NUMPY_OPS, Ops, ndtri

if TYPE_CHECKING:
    from normcore.stats.combiner import ColumnStats  # annotations only: the combiner reads Arrow

#: The bounds of an unclipped output: saturation at the float64 maximum.
SATURATION = (-FLOAT_MAX, FLOAT_MAX)


def linear_forward(x: Any, shift: Any, scale: Any, offset: Any, clip: tuple[Any, Any] | None, ops: Ops) -> Any:
    """``(x - shift) / scale + offset``, clipped to ``clip`` (else saturated at the float64
    maximum); non-finite ``x`` unchanged. Parameters (and the bounds of ``clip``) may be
    numbers or engine values."""
    y = (x - shift) / scale + offset
    low, high = clip if clip is not None else SATURATION
    return ops.clip_finite(y, x, low, high)


def linear_inverse(y: Any, shift: Any, scale: Any, offset: Any, ops: Ops) -> Any:
    """``(y - offset) * scale + shift`` (saturated at the float64 maximum); non-finite ``y``
    unchanged. An offset that is the number +0.0 is not subtracted: that leaves every
    ``y`` as it is, -0.0 included."""
    x = (y if _is_positive_zero(offset) else y - offset) * scale + shift
    return ops.clip_finite(x, y, -FLOAT_MAX, FLOAT_MAX)


def _is_positive_zero(value: Any) -> bool:
    """True for a fitted number that is +0.0 (not for an engine value or a vector)."""
    return isinstance(value, (float, int)) and value == 0 and math.copysign(1.0, value) > 0


class LinearStack(Stack):
    """Features of every :class:`LinearMethod` as one block: ``shift``, ``scale``, ``offset``
    and the clip bounds as vectors (the bounds are left out when no member clips, so the
    block saturates with scalar bounds as each unclipped column does)."""

    def operands(self, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        stacked = super().operands(members)
        low, high = stacked.pop("low"), stacked.pop("high")
        unclipped = bool(np.all(low == SATURATION[0]) and np.all(high == SATURATION[1]))
        stacked["clip"] = None if unclipped else (low, high)
        if not np.any(stacked["offset"]) and not np.signbit(stacked["offset"]).any():
            stacked["offset"] = 0.0  # every offset +0.0: the number (no vector to broadcast)
        return stacked

    def forward(self, x: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        return linear_forward(x, operands["shift"], operands["scale"], operands["offset"], operands["clip"], ops)

    def inverse(self, y: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        return linear_inverse(y, operands["shift"], operands["scale"], operands["offset"], ops)


#: The one stack of the linear methods.
LINEAR_STACK = LinearStack()


def positive_or_one(scale: float) -> tuple[float, bool]:
    """``(scale, False)`` for a usable positive finite scale, else ``(1.0, True)`` (constant)."""
    if scale > 0 and math.isfinite(scale):
        return scale, False
    return 1.0, True


def span(stats: ColumnStats, what: str = "range max - min") -> float:
    """``max - min`` of the column.

    Raises
    ------
    FitRefused
        The range overflows float64.
    """
    value = stats.moments.max - stats.moments.min
    if not math.isfinite(value):
        raise FitRefused(f"its {what} overflows float64 (min {stats.moments.min:.3g}, max {stats.moments.max:.3g})")
    return value


def load_linear(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``shift``, ``scale`` (> 0) and ``offset`` of an artifact entry, checked finite."""
    return {
        "shift": finite_number(entry, "shift"),
        "scale": finite_number(entry, "scale", positive=True),
        "offset": finite_number(entry, "offset"),
    }


class LinearMethod(Method):
    """A method of the form ``(x - shift) / scale + offset``; subclasses fit the three numbers."""

    kind: ClassVar[str] = "linear"

    def clip(self, params: MethodParams) -> tuple[float, float] | None:
        """Bounds the output is clipped to (``minmax`` with ``clip: true``), else None."""
        return None

    def result(self, shift: float, scale: float, params: MethodParams, offset: float = 0.0) -> dict[str, Any]:
        """The fitted fields of the artifact."""
        clip = self.clip(params)
        return {"shift": shift, "scale": scale, "offset": offset, "clip": None if clip is None else list(clip)}

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        return load_linear(entry)

    def operands(self, values: Mapping[str, Any], params: MethodParams) -> dict[str, Any]:
        return {"shift": values["shift"], "scale": values["scale"], "offset": values["offset"]}

    def forward(self, x: Any, operands: Mapping[str, Any], params: MethodParams, ops: Ops) -> Any:
        return linear_forward(x, operands["shift"], operands["scale"], operands["offset"], self.clip(params), ops)

    def inverse(self, y: Any, operands: Mapping[str, Any], params: MethodParams, ops: Ops) -> Any:
        return linear_inverse(y, operands["shift"], operands["scale"], operands["offset"], ops)

    def stack(self, operands: Mapping[str, Any], params: MethodParams) -> tuple[Stack, dict[str, Any]]:
        low, high = self.clip(params) or SATURATION
        return LINEAR_STACK, {**operands, "low": low, "high": high}

    def describe(self, values: Mapping[str, Any], params: MethodParams) -> str:
        text = f"(x - {values['shift']:.6g}) / {values['scale']:.6g}"
        if values["offset"]:
            text += f" + {values['offset']:.6g}"
        clip = self.clip(params)
        return text + (f", clip [{clip[0]:g}, {clip[1]:g}]" if clip else "")


class ZScoreParams(MethodParams):
    """``zscore``: ``with_mean`` / ``with_std`` as in scikit-learn; ``ddof`` overrides the job's."""

    with_mean: bool = True
    with_std: bool = True
    ddof: Literal[0, 1] | None = None


class ZScore(LinearMethod):
    """``(x - mean) / std``."""

    name = "zscore"
    Params = ZScoreParams

    def uses_variance(self, params: ZScoreParams) -> bool:
        return params.with_std

    def fit(self, stats: ColumnStats, params: ZScoreParams, ddof: int) -> FitResult:
        moments = stats.moments
        ddof = ddof if params.ddof is None else params.ddof
        shift = moments.mean if params.with_mean else 0.0
        if params.with_mean:
            span(stats)
        scale, constant = 1.0, False
        if params.with_std:
            scale, constant = positive_or_one(moments.std(ddof) if moments.count > ddof else 0.0)
        return FitResult(self.result(shift, scale, params), constant, {"ddof": ddof})

    def standardized(self, operands: Mapping[str, Any], params: ZScoreParams) -> tuple[float, float, float] | None:
        return operands["shift"], operands["scale"], operands["offset"]


class MinMaxParams(MethodParams):
    """``minmax``: target ``feature_range`` and whether to ``clip`` new data into it."""

    feature_range: tuple[float, float] = (0.0, 1.0)
    clip: bool = False

    @model_validator(mode="after")
    def _range_increases(self) -> MinMaxParams:
        low, high = self.feature_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"feature_range must be finite with min < max, got {list(self.feature_range)}")
        if not math.isfinite(high - low):
            raise ValueError(f"feature_range {list(self.feature_range)} is wider than float64 can represent")
        return self


class MinMax(LinearMethod):
    """``(x - min) / (max - min)`` mapped onto ``feature_range``."""

    name = "minmax"
    Params = MinMaxParams

    def clip(self, params: MinMaxParams) -> tuple[float, float] | None:
        return tuple(params.feature_range) if params.clip else None

    def fit(self, stats: ColumnStats, params: MinMaxParams, ddof: int) -> FitResult:
        low, high = params.feature_range
        spread, constant = positive_or_one(span(stats))
        scale = spread / (high - low) if not constant else 1.0
        if not scale > 0:
            raise FitRefused(f"its range {spread:.3g} over feature_range {list(params.feature_range)} underflows")
        return FitResult(self.result(stats.moments.min, scale, params, low), constant)

    def output_range(self, operands: Mapping[str, Any], params: MinMaxParams, stats: Mapping[str, Any]):
        return tuple(params.feature_range)


class NoParams(MethodParams):
    """Methods without parameters."""


class Mean(LinearMethod):
    """``(x - mean) / (max - min)``."""

    name = "mean"
    Params = NoParams

    def fit(self, stats: ColumnStats, params: NoParams, ddof: int) -> FitResult:
        scale, constant = positive_or_one(span(stats))
        return FitResult(self.result(stats.moments.mean, scale, params), constant)


class MaxAbs(LinearMethod):
    """``x / max|x|``, into ``[-1, 1]``."""

    name = "maxabs"
    Params = NoParams

    def fit(self, stats: ColumnStats, params: NoParams, ddof: int) -> FitResult:
        scale, constant = positive_or_one(stats.moments.max_abs)
        return FitResult(self.result(0.0, scale, params), constant)

    def output_range(self, operands: Mapping[str, Any], params: NoParams, stats: Mapping[str, Any]):
        return -1.0, 1.0


class Identity(LinearMethod):
    """``x`` (recorded statistics only)."""

    name = "identity"
    Params = NoParams

    def fit(self, stats: ColumnStats, params: NoParams, ddof: int) -> FitResult:
        return FitResult(self.result(0.0, 1.0, params))

    def describe(self, values: Mapping[str, Any], params: NoParams) -> str:
        return "x"


class RobustParams(MethodParams):
    """``robust``: (x - median) / IQR over ``quantile_range`` percent."""

    quantile_range: tuple[float, float] = (25.0, 75.0)
    with_centering: bool = True
    with_scaling: bool = True
    unit_variance: bool = False
    sketch_k: int = Field(DEFAULT_SKETCH_K, ge=8, le=65535)

    @model_validator(mode="after")
    def _range_inside_0_100(self) -> RobustParams:
        low, high = self.quantile_range
        if not 0 <= low < high <= 100:
            raise ValueError(f"quantile_range must satisfy 0 <= low < high <= 100, got {list(self.quantile_range)}")
        if self.unit_variance and not 0 < low < high < 100:
            raise ValueError("unit_variance needs 0 < low < high < 100 (normal quantiles of 0 and 100 are infinite)")
        return self


class Robust(LinearMethod):
    """``(x - median) / IQR`` (scikit-learn ``RobustScaler``), quantiles from the sketch."""

    name = "robust"
    Params = RobustParams
    checks_quantiles = True

    def needs_quantiles(self, params: RobustParams) -> bool:
        return True

    def fit(self, stats: ColumnStats, params: RobustParams, ddof: int) -> FitResult:
        low, high = params.quantile_range
        q_low, median, q_high = (float(v) for v in stats.sketch.percentiles([low, 50.0, high]))
        shift = median if params.with_centering else 0.0
        if params.with_centering:
            span(stats)
        scale, constant = 1.0, False
        if params.with_scaling:
            spread = q_high - q_low
            if not math.isfinite(spread):
                raise FitRefused(f"its inter-quantile range overflows float64 ({q_low:.3g} to {q_high:.3g})")
            scale, constant = positive_or_one(spread)
            if params.unit_variance and not constant:
                normal_low, normal_high = ndtri(NUMPY_OPS.array([low / 100.0, high / 100.0]), NUMPY_OPS)
                scale /= float(normal_high - normal_low)
        return FitResult(self.result(shift, scale, params), constant, {"rank_error": stats.sketch.rank_error})


#: ``10**j`` for ``|j|`` up to this is a normal float64 (the decimal divisor is split beyond).
_DIRECT_DECIMAL = 300


def _decimal_divisors(exponent: int) -> tuple[float, float]:
    # x / 10**j as (x / 10**(j - b)) / 10**b with 10**b normal; for |j| <= 300 the first
    # divisor is 1 and the result is x / 10**j, correctly rounded.
    second = max(-_DIRECT_DECIMAL, min(_DIRECT_DECIMAL, exponent))
    return 10.0 ** (exponent - second), 10.0**second


def _decimal_scaled(value: float, exponent: int) -> float:
    first, second = _decimal_divisors(exponent)
    return (value / first) / second


def decimal_exponent(max_abs: float) -> int:
    """Smallest integer ``j`` whose scaled ``max_abs / 10**j`` (as ``decimal`` computes it) is
    at most 1; 0 when ``max_abs`` is 0. Defined over the whole float64 range, denormals included."""
    if max_abs == 0:
        return 0
    j = math.ceil(math.log10(max_abs))
    while _decimal_scaled(max_abs, j) > 1.0:
        j += 1
    while _decimal_scaled(max_abs, j - 1) <= 1.0:
        j -= 1
    return j


class DecimalStack(Stack):
    """``decimal``'s formula, for one feature (numbers) or a block of them (vectors)."""

    def forward(self, x: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        return ops.clip_finite((x / operands["first"]) / operands["second"], x, -FLOAT_MAX, FLOAT_MAX)

    def inverse(self, y: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        x = (y * operands["second"]) * operands["first"]
        return ops.clip_finite(x, y, -FLOAT_MAX, FLOAT_MAX)


#: The stack of ``decimal`` (its formula lives here).
DECIMAL_STACK = DecimalStack()


class Decimal(Method):
    """``x / 10**j`` into ``[-1, 1]`` (decimal scaling)."""

    name = "decimal"
    Params = NoParams
    kind = "linear"

    def fit(self, stats: ColumnStats, params: NoParams, ddof: int) -> FitResult:
        exponent = decimal_exponent(stats.moments.max_abs)
        first, second = _decimal_divisors(exponent)
        scale = first * second
        values = {"shift": 0.0, "scale": scale if math.isfinite(scale) and scale > 0 else None, "offset": 0.0,
                  "clip": None, "exponent": exponent}  # fmt: skip
        return FitResult(values)

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        exponent = entry.get("exponent")
        if isinstance(exponent, bool) or not isinstance(exponent, int) or not -330 <= exponent <= 310:
            raise ArtifactError(f"exponent: expected an integer in [-330, 310], got {exponent!r}")
        return {"exponent": exponent}

    def operands(self, values: Mapping[str, Any], params: NoParams) -> dict[str, Any]:
        first, second = _decimal_divisors(values["exponent"])
        return {"first": first, "second": second}

    def forward(self, x: Any, operands: Mapping[str, Any], params: NoParams, ops: Ops) -> Any:
        return DECIMAL_STACK.forward(x, operands, ops)

    def inverse(self, y: Any, operands: Mapping[str, Any], params: NoParams, ops: Ops) -> Any:
        return DECIMAL_STACK.inverse(y, operands, ops)

    def stack(self, operands: Mapping[str, Any], params: NoParams) -> tuple[Stack, dict[str, Any]]:
        return DECIMAL_STACK, dict(operands)

    def output_range(self, operands: Mapping[str, Any], params: NoParams, stats: Mapping[str, Any]):
        return -1.0, 1.0

    def describe(self, values: Mapping[str, Any], params: NoParams) -> str:
        return f"x / 10^{values['exponent']}"


for _method in (ZScore(), MinMax(), Mean(), Decimal(), MaxAbs(), Robust(), Identity()):
    register(_method)
