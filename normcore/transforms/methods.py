"""Normalization methods: their parameters and how each is fitted from statistics.

A method turns the statistics of one column (:class:`~normcore.stats.MomentsState`
and, for ``robust`` / ``quantile``, a :class:`~normcore.stats.QuantileSketch`) into
a fitted transform (:mod:`normcore.transforms.fitted`). This is the analyzer to
mapper step; every engine calls :func:`fit_method` and nothing else.

Conventions
-----------
* ``zscore``: ``(x - mean) / std`` with ``std = sqrt(M2 / (n - ddof))``; ddof 0
  (population, scikit-learn / Keras) by default, 1 for Spark MLlib.
* A column with zero spread (zero variance, zero range, zero IQR, zero max|x|) is
  *constant*: its scale is 1 (as scikit-learn does), ``constant: true`` is recorded
  and a warning is raised by the caller. Spread is computed exactly, so a column
  is constant only when all its finite values are equal.
* ``decimal``: ``x / 10**j`` with ``j`` the smallest integer such that
  ``max|x| / 10**j <= 1`` (999 -> 3, 1000 -> 3, 0.005 -> -2, 0 -> 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from normcore.stats import DEFAULT_SKETCH_K, MomentsState, QuantileSketch
from normcore.transforms.fitted import FittedTransform, LinearTransform, QuantileTransform
from normcore.transforms.ops import NUMPY_OPS, ndtri


class MethodParams(BaseModel):
    """Base of every method's parameters: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ZScoreParams(MethodParams):
    """``zscore``: ``with_mean`` / ``with_std`` as in scikit-learn; ``ddof`` overrides the job's."""

    with_mean: bool = True
    with_std: bool = True
    ddof: Literal[0, 1] | None = None


class MinMaxParams(MethodParams):
    """``minmax``: target ``feature_range`` and whether to ``clip`` new data into it."""

    feature_range: tuple[float, float] = (0.0, 1.0)
    clip: bool = False

    @model_validator(mode="after")
    def _range_increases(self) -> MinMaxParams:
        low, high = self.feature_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"feature_range must be finite with min < max, got {list(self.feature_range)}")
        return self


class NoParams(MethodParams):
    """Methods without parameters (``mean``, ``decimal``, ``maxabs``, ``identity``)."""


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
        return self


class QuantileParams(MethodParams):
    """``quantile``: ``n_quantiles`` points, ``output`` uniform or normal."""

    n_quantiles: int = Field(1000, ge=2, le=100_000)
    output: Literal["uniform", "normal"] = "uniform"
    sketch_k: int = Field(DEFAULT_SKETCH_K, ge=8, le=65535)


@dataclass(frozen=True)
class Fit:
    """A fitted transform and whether the column was constant (scale forced to 1)."""

    transform: FittedTransform
    constant: bool
    details: dict[str, Any]


FitFunction = Callable[[MomentsState, "QuantileSketch | None", Any, int], Fit]


@dataclass(frozen=True)
class Method:
    """A normalization method: its parameter model and its fit function."""

    name: str
    params: type[MethodParams]
    needs_quantiles: bool
    fit: FitFunction


def _positive_or_one(scale: float) -> tuple[float, bool]:
    if scale > 0 and math.isfinite(scale):
        return scale, False
    return 1.0, True


def _fit_zscore(moments: MomentsState, sketch: QuantileSketch | None, p: ZScoreParams, ddof: int) -> Fit:
    ddof = ddof if p.ddof is None else p.ddof
    shift = moments.mean if p.with_mean else 0.0
    if p.with_std:
        scale, constant = _positive_or_one(math.sqrt(moments.variance(ddof)) if moments.count > ddof else 0.0)
    else:
        scale, constant = 1.0, False
    return Fit(LinearTransform("zscore", shift, scale), constant, {"ddof": ddof})


def _fit_minmax(moments: MomentsState, sketch: QuantileSketch | None, p: MinMaxParams, ddof: int) -> Fit:
    low, high = p.feature_range
    spread, constant = _positive_or_one(moments.max - moments.min)
    scale = spread / (high - low) if not constant else 1.0
    clip = (low, high) if p.clip else None
    return Fit(LinearTransform("minmax", moments.min, scale, low, clip), constant, {})


def _fit_mean(moments: MomentsState, sketch: QuantileSketch | None, p: NoParams, ddof: int) -> Fit:
    scale, constant = _positive_or_one(moments.max - moments.min)
    return Fit(LinearTransform("mean", moments.mean, scale), constant, {})


def decimal_exponent(max_abs: float) -> int:
    """Smallest integer ``j`` with ``max_abs / 10**j <= 1`` (0 when ``max_abs`` is 0)."""
    if max_abs == 0:
        return 0
    j = math.ceil(math.log10(max_abs))
    while max_abs / 10.0**j > 1:
        j += 1
    while max_abs / 10.0 ** (j - 1) <= 1:
        j -= 1
    return j


def _fit_decimal(moments: MomentsState, sketch: QuantileSketch | None, p: NoParams, ddof: int) -> Fit:
    exponent = decimal_exponent(moments.max_abs)
    return Fit(LinearTransform("decimal", 0.0, 10.0**exponent), False, {"exponent": exponent})


def _fit_maxabs(moments: MomentsState, sketch: QuantileSketch | None, p: NoParams, ddof: int) -> Fit:
    scale, constant = _positive_or_one(moments.max_abs)
    return Fit(LinearTransform("maxabs", 0.0, scale), constant, {})


def _fit_robust(moments: MomentsState, sketch: QuantileSketch | None, p: RobustParams, ddof: int) -> Fit:
    low, high = p.quantile_range
    q_low, median, q_high = sketch.percentiles([low, 50.0, high])
    shift = float(median) if p.with_centering else 0.0
    constant = False
    scale = 1.0
    if p.with_scaling:
        scale, constant = _positive_or_one(float(q_high - q_low))
        if p.unit_variance and not constant:
            normal_low, normal_high = ndtri(np.array([low, high]) / 100.0, NUMPY_OPS)
            scale /= float(normal_high - normal_low)
    details = {"rank_error": sketch.rank_error}
    return Fit(LinearTransform("robust", shift, scale), constant, details)


def _fit_quantile(moments: MomentsState, sketch: QuantileSketch | None, p: QuantileParams, ddof: int) -> Fit:
    n_points = max(1, min(p.n_quantiles, moments.count))
    references = np.linspace(0, 1, n_points, endpoint=True)
    quantiles = np.maximum.accumulate(sketch.percentiles(references * 100))
    transform = QuantileTransform("quantile", tuple(quantiles.tolist()), tuple(references.tolist()), p.output)
    constant = moments.max == moments.min
    return Fit(transform, constant, {"rank_error": sketch.rank_error})


def _fit_identity(moments: MomentsState, sketch: QuantileSketch | None, p: NoParams, ddof: int) -> Fit:
    return Fit(LinearTransform("identity", 0.0, 1.0), False, {})


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("zscore", ZScoreParams, False, _fit_zscore),
        Method("minmax", MinMaxParams, False, _fit_minmax),
        Method("mean", NoParams, False, _fit_mean),
        Method("decimal", NoParams, False, _fit_decimal),
        Method("maxabs", NoParams, False, _fit_maxabs),
        Method("robust", RobustParams, True, _fit_robust),
        Method("quantile", QuantileParams, True, _fit_quantile),
        Method("identity", NoParams, False, _fit_identity),
    )
}


def method_names() -> str:
    """Comma-separated method names, for error messages."""
    return ", ".join(METHODS)


def fit_method(
    method: str, params: MethodParams, moments: MomentsState, sketch: QuantileSketch | None, ddof: int
) -> Fit:
    """Fit ``method`` on one column's statistics.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    params : MethodParams
        Validated parameters of that method.
    moments : MomentsState
        The column's statistics; must hold at least one finite value.
    sketch : QuantileSketch or None
        Required when the method needs quantiles.
    ddof : int
        Job-level variance convention (``zscore`` only).

    Returns
    -------
    Fit
    """
    return METHODS[method].fit(moments, sketch, params, ddof)
