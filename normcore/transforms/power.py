"""The ``power`` method: Yeo-Johnson (or Box-Cox), lambda by maximum likelihood, then standardized.

scikit-learn's ``PowerTransformer`` semantics. Yeo-Johnson, for any real ``x``::

    x >= 0:  ((x + 1) ** lam - 1) / lam          (log1p(x) when lam == 0)
    x <  0:  -((1 - x) ** (2 - lam) - 1) / (2 - lam)   (-log1p(-x) when lam == 2)

written as ``expm1(lam * log1p(|x|)) / lam`` (no cancellation for small ``lam``); Box-Cox
(``method: box-cox``) for strictly positive columns: ``(x ** lam - 1) / lam`` (``log(x)``).
With ``standardize: true`` (the default) the transformed values are then standardized
with their mean and population standard deviation.

Fitting lambda
--------------
The log-likelihood scikit-learn maximizes is ``-n/2 * log(var(psi(x, lam))) + (lam - 1) *
S`` with ``S = sum(sign(x) * log1p(|x|))`` (Box-Cox: ``sum(log(x))``). The variance of the
transformed values is not a function of any fixed set of moments of ``x``, so the fit
searches lambda in passes over the data (:mod:`normcore.stats.search`), every engine the
same way, every statistic exact and mergeable:

1. the first pass evaluates ``lam`` on 41 points over ``[-4, 6]`` (spacing 0.25): per point
   the exact moments of ``psi(x, lam)`` and ``S``;
2. while the best point is at an end of everything searched, the next pass looks beyond
   it, over twice the last grid's width (lambdas of -280 occur: breast_cancer's feature 19);
3. then each further pass evaluates 41 points over ``[best - h, best + h]`` around the best
   point so far (``h`` its grid's spacing), so the spacing shrinks 20-fold per pass;
4. once the spacing around the best point is at most ``2e-6``, that point is lambda
   (5 passes in all when the optimum lies inside ``[-4, 6]``, about 10 for ``|lambda|``
   in the hundreds).

So lambda is within ``8e-7`` of the likelihood's maximizer (for a unimodal likelihood, as
for any data seen in practice), and its log-likelihood within about ``n * L**2 * 1e-13``
of the maximum (``L`` the largest ``log1p|x|``): 1e-11 relative for typical data, where
scikit-learn's Brent search stops at a relative tolerance of 1.5e-8 in lambda. The mean
and standard deviation used to standardize are the exact moments of ``psi(x, lambda)``
(those of the chosen grid point). Points whose transform overflows float64 for some value
are not used. A constant column gets ``lambda = 1`` (Yeo-Johnson: the identity) and
scale 1.

Per key, every key value searches its own lambda (its rows evaluate the shared grid and
their own), in the same passes.

Apply: a finite value whose transform would overflow saturates at the float64 maximum;
for Box-Cox a value ``<= 0`` (outside its domain) is replaced by the smallest value seen
at fit time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from normcore.stats import ColumnRequest, MomentsState, SearchRequest
from normcore.stats.search import Grid, SearchState, linspace_grid
from normcore.transforms.base import FLOAT_MAX, FitRefused, FitResult, Method, MethodParams, finite_number, register
from normcore.transforms.linear import linear_forward, linear_inverse, load_linear, positive_or_one
from normcore.transforms.ops import NUMPY_OPS, Ops

if TYPE_CHECKING:
    from normcore.stats.combiner import ColumnStats, KeyedStats  # annotations only: the combiner reads Arrow

#: The first pass's grid: 41 points over [-4, 6].
FIRST_GRID: Grid = linspace_grid(1.0, 5.0, 41)
#: Points per grid.
GRID_POINTS = 41
#: The search stops once the spacing around the best point is at most this.
TARGET_SPACING = 2e-6
#: The search never goes beyond |lambda| of this.
LAMBDA_LIMIT = 1000.0
#: Just above -1: the argument of log1p in the inverse maps stays in its domain.
_ABOVE_MINUS_ONE = -1.0 + 2.0**-52


def yeo_johnson(x: Any, lam: Any, ops: Ops) -> Any:
    """The Yeo-Johnson transform of ``x`` (``lam`` a number or an engine value)."""
    magnitude = ops.bind(ops.log1p(ops.abs(x)))
    positive = ops.where(lam == 0.0, magnitude, ops.expm1(lam * magnitude) / lam)
    other = 2.0 - lam
    negative = ops.where(other == 0.0, -magnitude, -ops.expm1(other * magnitude) / other)
    return ops.clip(ops.where(x >= 0.0, positive, negative), -FLOAT_MAX, FLOAT_MAX)


def yeo_johnson_inverse(y: Any, lam: Any, ops: Ops) -> Any:
    """The inverse of :func:`yeo_johnson` (saturated at the float64 maximum)."""
    other = 2.0 - lam
    positive = ops.where(
        lam == 0.0, ops.expm1(y), ops.expm1(ops.log1p(ops.clip(lam * y, _ABOVE_MINUS_ONE, FLOAT_MAX)) / lam)
    )
    negative = ops.where(
        other == 0.0,
        -ops.expm1(-y),
        -ops.expm1(ops.log1p(ops.clip(-other * y, _ABOVE_MINUS_ONE, FLOAT_MAX)) / other),
    )
    return ops.clip(ops.where(y >= 0.0, positive, negative), -FLOAT_MAX, FLOAT_MAX)


def box_cox(x: Any, lam: Any, ops: Ops) -> Any:
    """The Box-Cox transform of positive ``x``."""
    logged = ops.bind(ops.log(x))
    return ops.clip(ops.where(lam == 0.0, logged, ops.expm1(lam * logged) / lam), -FLOAT_MAX, FLOAT_MAX)


def box_cox_inverse(y: Any, lam: Any, ops: Ops) -> Any:
    """The inverse of :func:`box_cox` (saturated at the float64 maximum)."""
    scaled = ops.exp(ops.log1p(ops.clip(lam * y, _ABOVE_MINUS_ONE, FLOAT_MAX)) / lam)
    return ops.clip(ops.where(lam == 0.0, ops.exp(y), scaled), 0.0, FLOAT_MAX)


def _family(values: np.ndarray, lam: float, method: str) -> np.ndarray:
    return (yeo_johnson if method == "yeo-johnson" else box_cox)(values, lam, NUMPY_OPS)


def _summand(values: np.ndarray, method: str) -> np.ndarray:
    if method == "yeo-johnson":
        return np.sign(values) * np.log1p(np.abs(values))
    return np.log(values)


def log_likelihood(moments: MomentsState, summand_total: float, lam: float) -> float:
    """``-n/2 * log(var) + (lam - 1) * S`` (``var`` with ddof 0), as scikit-learn's
    ``_yeo_johnson_log_likelihood`` and SciPy's ``boxcox_llf``; -inf without spread."""
    std = moments.std(0)
    if not std > 0:
        return -math.inf
    return -moments.count * math.log(std) + (lam - 1.0) * summand_total


class PowerParams(MethodParams):
    """``power``: the ``method`` (``yeo-johnson`` or ``box-cox``) and whether to ``standardize``."""

    method: Literal["yeo-johnson", "box-cox"] = "yeo-johnson"
    standardize: bool = True


def _best(search: SearchState | None, count: int) -> tuple[float, MomentsState, float, Grid] | None:
    """The grid point with the highest log-likelihood on ``count`` values, if any."""
    if search is None:
        return None
    scored = [(log_likelihood(m, total, lam), lam, m, total, grid) for lam, m, total, grid in search.points(count)]
    scored = [item for item in scored if math.isfinite(item[0])]
    if not scored:
        return None
    _, lam, moments, total, grid = max(scored, key=lambda item: (item[0], -abs(item[1] - 1.0)))
    finest = min((g for g in search.grids if lam in g), key=lambda g: g[1] - g[0])
    return lam, moments, total, finest


def _next_grid(stats: ColumnStats) -> Grid | None:
    """The grid of the next pass for these rows, or None when the search is done."""
    if stats.moments.count == 0 or stats.moments.min == stats.moments.max:
        return None
    best = _best(stats.search, stats.moments.count)
    if best is None:
        return None
    lam, _, _, grid = best
    spacing = grid[1] - grid[0]
    searched = (min(g[0] for g in stats.search.grids), max(g[-1] for g in stats.search.grids))
    if lam in (grid[0], grid[-1]) and lam in searched:
        # The best point is at the end of everything searched: look beyond it, twice as far.
        if abs(lam) >= LAMBDA_LIMIT:
            return None
        width = 2.0 * (grid[-1] - grid[0])
        end = lam + width if lam == grid[-1] else lam - width
        return tuple(float(v) for v in np.linspace(min(lam, end), max(lam, end), GRID_POINTS))
    if spacing <= TARGET_SPACING:
        return None
    return linspace_grid(lam, spacing, GRID_POINTS)


class Power(Method):
    """Yeo-Johnson / Box-Cox with the maximum-likelihood lambda (see the module notes)."""

    name = "power"
    Params = PowerParams
    kind = "power"
    space = "power-transformed values"

    def request(self, name: str, params: PowerParams, sketch: bool) -> ColumnRequest:
        search = SearchRequest(partial(_family, method=params.method), partial(_summand, method=params.method),
                               FIRST_GRID)  # fmt: skip
        return ColumnRequest(name, sketch, search=search)

    def next_pass(
        self, name: str, params: PowerParams, stats: ColumnStats, keyed: KeyedStats | None
    ) -> ColumnRequest | None:
        """The request of the next pass of the lambda search, or None when it is done."""
        grid = _next_grid(stats)
        key_grids = {}
        for value, accumulator in (keyed or {}).items():
            own = _next_grid(accumulator.columns[name]) if value is not None else None
            if own is not None:
                key_grids[value] = own
        if grid is None and not key_grids:
            return None
        search = SearchRequest(partial(_family, method=params.method), partial(_summand, method=params.method),
                               grid or (), key_grids)  # fmt: skip
        return ColumnRequest(name, search=search)

    def uses_variance(self, params: PowerParams) -> bool:
        return True

    def fit(self, stats: ColumnStats, params: PowerParams, ddof: int) -> FitResult:
        moments = stats.moments
        if params.method == "box-cox" and moments.min <= 0:
            raise FitRefused(f"box-cox needs strictly positive values; its minimum is {moments.min:.6g}")
        if moments.min == moments.max:
            lam = 1.0
            (value,) = _family(np.array([moments.min]), lam, params.method)
            fitted = MomentsState(count=moments.count, pivot=float(value), min=float(value), max=float(value))
            likelihood = None
        else:
            best = _best(stats.search, moments.count)
            if best is None:
                raise FitRefused("no lambda gives finite transformed values")
            lam, fitted, total, _ = best
            likelihood = log_likelihood(fitted, total, lam)
        shift, scale, constant = 0.0, 1.0, False
        if params.standardize:
            shift = fitted.mean
            scale, constant = positive_or_one(fitted.std(0))
        summary = {**fitted.summary(), **{k: getattr(moments, k) for k in ("null_count", "nan_count", "inf_count")}}
        values = {"lambda": lam, "shift": shift, "scale": scale, "offset": 0.0, "input_min": moments.min}
        details = {"log_likelihood": likelihood}
        sketch = None
        if stats.sketch is not None:
            sketch = stats.sketch.mapped(partial(_family, lam=lam, method=params.method))
        return FitResult(values, constant, details, summary, sketch)

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        values = load_linear(entry)
        values["lambda"] = finite_number(entry, "lambda")
        values["input_min"] = finite_number(entry, "input_min")
        return values

    def operands(self, values: Mapping[str, Any], params: PowerParams) -> dict[str, Any]:
        return {name: values[name] for name in ("lambda", "shift", "scale", "offset", "input_min")}

    def fit_space(self, x: Any, operands: Mapping[str, Any], params: PowerParams, ops: Ops) -> Any:
        lam = operands["lambda"]
        if params.method == "box-cox":
            return box_cox(ops.where(x > 0.0, x, operands["input_min"]), lam, ops)
        return yeo_johnson(x, lam, ops)

    def forward(self, x: Any, operands: Mapping[str, Any], params: PowerParams, ops: Ops) -> Any:
        transformed = self.fit_space(x, operands, params, ops)
        y = linear_forward(transformed, operands["shift"], operands["scale"], operands["offset"], None, ops)
        return ops.where(ops.is_finite(x), y, x)

    def inverse(self, y: Any, operands: Mapping[str, Any], params: PowerParams, ops: Ops) -> Any:
        transformed = linear_inverse(y, operands["shift"], operands["scale"], operands["offset"], ops)
        inverse = yeo_johnson_inverse if params.method == "yeo-johnson" else box_cox_inverse
        return ops.where(ops.is_finite(y), inverse(transformed, operands["lambda"], ops), y)

    def output_range(self, operands: Mapping[str, Any], params: PowerParams, stats: Mapping[str, Any]):
        ends = np.array([stats["min"], stats["max"]])
        low, high = linear_forward(ends, operands["shift"], operands["scale"], operands["offset"], None, NUMPY_OPS)
        return float(low), float(high)

    def standardized(self, operands: Mapping[str, Any], params: PowerParams) -> tuple[float, float, float] | None:
        return (operands["shift"], operands["scale"], operands["offset"]) if params.standardize else None

    def describe(self, values: Mapping[str, Any], params: PowerParams) -> str:
        text = f"{params.method} lambda {values['lambda']:.6g}"
        if params.standardize:
            text += f", then (y - {values['shift']:.6g}) / {values['scale']:.6g}"
        return text


register(Power())
