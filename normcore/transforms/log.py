"""The ``log`` method: ``sign(x) * log1p(|x|)``, then standardized when ``standardize: true``.

The statistics of a ``log`` feature are those of the mapped values (the value map is
applied before they are gathered), so ``standardize`` divides by the standard deviation
of the logged values, and drift and validation compare logged values with logged values.
The map is odd, continuous and increasing, defined for every finite value; its inverse is
``sign(y) * expm1(|y|)``, saturated at the float64 maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from normcore.stats import ColumnRequest
from normcore.transforms.base import FLOAT_MAX, FitResult, Method, MethodParams, register
from normcore.transforms.linear import linear_forward, linear_inverse, load_linear, positive_or_one
from normcore.transforms.ops import NUMPY_OPS, Ops

if TYPE_CHECKING:
    from normcore.stats.combiner import ColumnStats  # annotations only: the combiner reads Arrow


def signed_log1p(x: Any, ops: Ops) -> Any:
    """``sign(x) * log1p(|x|)``."""
    return ops.sign(x) * ops.log1p(ops.abs(x))


def signed_expm1(y: Any, ops: Ops) -> Any:
    """``sign(y) * expm1(|y|)`` (the inverse of :func:`signed_log1p`), saturated at the float64 maximum."""
    return ops.sign(y) * ops.clip(ops.expm1(ops.abs(y)), 0.0, FLOAT_MAX)


class LogParams(MethodParams):
    """``log``: ``standardize`` the logged values (zero mean, unit variance, ddof as the job's)."""

    standardize: bool = False
    ddof: Literal[0, 1] | None = None


class Log(Method):
    """``sign(x) * log1p(|x|)``, optionally standardized."""

    name = "log"
    Params = LogParams
    kind = "log"
    space = "sign(x) log1p|x|"

    def request(self, name: str, params: LogParams, sketch: bool) -> ColumnRequest:
        return ColumnRequest(name, sketch, value_map=partial(signed_log1p, ops=NUMPY_OPS))

    def uses_variance(self, params: LogParams) -> bool:
        return params.standardize

    def fit(self, stats: ColumnStats, params: LogParams, ddof: int) -> FitResult:
        moments = stats.moments
        ddof = ddof if params.ddof is None else params.ddof
        if not params.standardize:
            return FitResult({"shift": 0.0, "scale": 1.0, "offset": 0.0}, details={"ddof": ddof})
        scale, constant = positive_or_one(moments.std(ddof) if moments.count > ddof else 0.0)
        return FitResult({"shift": moments.mean, "scale": scale, "offset": 0.0}, constant, {"ddof": ddof})

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        return load_linear(entry)

    def operands(self, values: Mapping[str, Any], params: LogParams) -> dict[str, Any]:
        return {"shift": values["shift"], "scale": values["scale"], "offset": values["offset"]}

    def forward(self, x: Any, operands: Mapping[str, Any], params: LogParams, ops: Ops) -> Any:
        logged = signed_log1p(x, ops)
        return linear_forward(logged, operands["shift"], operands["scale"], operands["offset"], None, ops)

    def inverse(self, y: Any, operands: Mapping[str, Any], params: LogParams, ops: Ops) -> Any:
        logged = linear_inverse(y, operands["shift"], operands["scale"], operands["offset"], ops)
        return ops.where(ops.is_finite(y), signed_expm1(logged, ops), y)

    def fit_space(self, x: Any, operands: Mapping[str, Any], params: LogParams, ops: Ops) -> Any:
        return signed_log1p(x, ops)

    def output_range(self, operands: Mapping[str, Any], params: LogParams, stats: Mapping[str, Any]):
        ends = np.array([stats["min"], stats["max"]])
        low, high = linear_forward(ends, operands["shift"], operands["scale"], operands["offset"], None, NUMPY_OPS)
        return float(low), float(high)

    def standardized(self, operands: Mapping[str, Any], params: LogParams) -> tuple[float, float, float] | None:
        return (operands["shift"], operands["scale"], operands["offset"]) if params.standardize else None

    def describe(self, values: Mapping[str, Any], params: LogParams) -> str:
        text = "sign(x) log1p|x|"
        if params.standardize:
            text = f"({text} - {values['shift']:.6g}) / {values['scale']:.6g}"
        return text


register(Log())
