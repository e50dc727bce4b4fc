"""The ``quantile`` method: to uniform ``[0, 1]`` or a standard normal, scikit-learn semantics.

``n_quantiles`` points at evenly spaced ranks (``references``) come from the KLL sketch;
a value maps to the mean of a forward and a backward linear interpolation (ties land
mid-range), the lowest / highest point map to exactly 0 / 1, and ``output: normal``
follows with the standard normal quantile function, clipped as scikit-learn clips it.

Notes
-----
The map is NumPy's ``interp`` taken apart (``numpy/_core/src/multiarray/compiled_base.c``)
and written with the operations adapter, so that a Spark ``Column`` evaluates it without
Python: the forward and backward interpolations differ only on a run of tied quantiles.
Deduplicating the quantiles into *knots* makes one binary search enough: between two
knots both interpolations share the segment and its slope; on a knot they take its first
and last rank, whose mean is precomputed (:func:`quantile_tables`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from normcore.errors import ArtifactError
from normcore.stats import DEFAULT_SKETCH_K
from normcore.transforms.base import FitResult, Method, MethodParams, number_list, register
from normcore.transforms.ops import NUMPY_OPS, Ops, ndtr, ndtri

if TYPE_CHECKING:
    from normcore.stats.combiner import ColumnStats  # annotations only: the combiner reads Arrow

#: scikit-learn's ``BOUNDS_THRESHOLD`` for the quantile transform.
BOUNDS_THRESHOLD = 1e-7


def _normal_clip_bounds() -> tuple[float, float]:
    margin = BOUNDS_THRESHOLD - np.spacing(1)
    with np.errstate(all="ignore"):
        bounds = ndtri(np.array([margin, 1 - margin]), NUMPY_OPS)
    return float(bounds[0]), float(bounds[1])


#: scikit-learn's clip bounds for ``output="normal"``: ``ndtri(1e-7 - eps)``, ``ndtri(1 - (1e-7 - eps))``.
NORMAL_CLIP_BOUNDS = _normal_clip_bounds()


def normal_clip_bounds() -> tuple[float, float]:
    """:data:`NORMAL_CLIP_BOUNDS`."""
    return NORMAL_CLIP_BOUNDS


class QuantileParams(MethodParams):
    """``quantile``: ``n_quantiles`` points, ``output`` uniform or normal."""

    n_quantiles: int = Field(1000, ge=2, le=100_000)
    output: Literal["uniform", "normal"] = "uniform"
    sketch_k: int = Field(DEFAULT_SKETCH_K, ge=8, le=65535)


def _slopes(rise: np.ndarray, run: np.ndarray) -> tuple[float, ...]:
    # NumPy's interp slope (fp[j+1] - fp[j]) / (xp[j+1] - xp[j]) of each segment; a
    # segment of zero width is never interpolated on and stores 0. At least one entry.
    if run.size == 0:
        return (0.0,)
    with np.errstate(divide="ignore", invalid="ignore"):
        return tuple(np.where(run > 0, rise / np.where(run > 0, run, 1.0), 0.0).tolist())


def quantile_tables(quantiles: tuple[float, ...], references: tuple[float, ...]) -> dict[str, Any]:
    """The lookup tables of the map (``m`` distinct quantiles, the *knots*; ``n`` quantiles).

    Returns
    -------
    dict
        ``knots`` (m,) increasing distinct quantiles; ``knot_ranks`` (m,) rank of a value
        equal to a knot (mean of the first and last reference of its run of ties);
        ``rank_low`` / ``rank_high`` (max(m - 1, 1),) references at the two ends of the
        segment after each knot; ``slopes`` (max(m - 1, 1),) forward slope of each segment;
        ``knot_count`` m; ``low`` / ``high`` first and last quantile; ``first_rank`` /
        ``last_rank``; ``references`` and ``quantiles`` (n,) for the inverse map, with its
        ``inverse_slopes`` (max(n - 1, 1),); ``point_count`` n.
    """
    values = np.asarray(quantiles, dtype=np.float64)
    ranks = np.asarray(references, dtype=np.float64)
    knots, first = np.unique(values, return_index=True)
    last = np.append(first[1:] - 1, values.size - 1)
    knot_ranks = 0.5 * (ranks[last] + ranks[first])
    rank_low, rank_high = ranks[last[:-1]], ranks[first[1:]]
    padding = (0.0,) if knots.size == 1 else ()
    return {
        "knots": tuple(knots.tolist()),
        "knot_ranks": tuple(knot_ranks.tolist()),
        "rank_low": tuple(rank_low.tolist()) + padding,
        "rank_high": tuple(rank_high.tolist()) + padding,
        "slopes": _slopes(rank_high - rank_low, np.diff(knots)),
        "knot_count": float(knots.size),
        "low": float(values[0]),
        "high": float(values[-1]),
        "first_rank": float(ranks[0]),
        "last_rank": float(ranks[-1]),
        "references": tuple(ranks.tolist()),
        "quantiles": tuple(values.tolist()),
        "inverse_slopes": _slopes(np.diff(values), np.diff(ranks)),
        "point_count": float(ranks.size),
    }


class Quantile(Method):
    """scikit-learn's ``QuantileTransformer`` over the points of the fitted sketch."""

    name = "quantile"
    Params = QuantileParams
    kind = "quantile"
    checks_quantiles = True

    def needs_quantiles(self, params: QuantileParams) -> bool:
        return True

    def fit(self, stats: ColumnStats, params: QuantileParams, ddof: int) -> FitResult:
        n_points = max(1, min(params.n_quantiles, stats.moments.count))
        references = np.linspace(0, 1, n_points, endpoint=True)
        quantiles = np.maximum.accumulate(stats.sketch.percentiles(references * 100))
        values = {"output": params.output, "quantiles": quantiles.tolist(), "references": references.tolist()}
        constant = stats.moments.max == stats.moments.min
        return FitResult(values, constant, {"rank_error": stats.sketch.rank_error})

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        quantiles = number_list(entry, "quantiles")
        references = number_list(entry, "references")
        if len(references) != len(quantiles):
            raise ArtifactError(f"references: {len(references)} ranks for {len(quantiles)} quantiles")
        if references[0] != 0.0 or references[-1] != 1.0:
            raise ArtifactError("references: expected ranks from 0 to 1")
        tables = quantile_tables(quantiles, references)
        if not all(np.all(np.isfinite(tables[name])) for name in ("slopes", "inverse_slopes")):
            raise ArtifactError("quantiles: their spread overflows float64")
        return {"quantiles": quantiles, "references": references}

    def operands(self, values: Mapping[str, Any], params: QuantileParams) -> dict[str, Any]:
        return quantile_tables(values["quantiles"], values["references"])

    def forward(self, x: Any, t: Mapping[str, Any], params: QuantileParams, ops: Ops) -> Any:
        count = ops.bind(ops.search(t["knots"], x))
        knot = count - 1
        lower = ops.bind(ops.gather(t["knots"], knot))
        upper = ops.gather(t["knots"], count)
        slope = ops.bind(ops.gather(t["slopes"], knot))
        forward = slope * (x - lower) + ops.gather(t["rank_low"], knot)
        backward = ops.gather(t["rank_high"], knot) - slope * (upper - x)
        mapped = ops.where(
            count == 0,
            t["first_rank"],
            ops.where(
                lower == x,
                ops.gather(t["knot_ranks"], knot),
                ops.where(count == t["knot_count"], t["last_rank"], 0.5 * (forward + backward)),
            ),
        )
        if params.output == "normal":
            at_low = x - BOUNDS_THRESHOLD < t["low"]
            at_high = x + BOUNDS_THRESHOLD > t["high"]
        else:
            at_low = x == t["low"]
            at_high = x == t["high"]
        mapped = ops.where(at_low, 0.0, ops.where(at_high, 1.0, mapped))
        if params.output == "normal":
            low, high = NORMAL_CLIP_BOUNDS
            mapped = ops.clip(ndtri(ops.bind(mapped), ops), low, high)
        return ops.where(ops.is_finite(x), mapped, x)

    def inverse(self, y: Any, t: Mapping[str, Any], params: QuantileParams, ops: Ops) -> Any:
        if params.output == "normal":
            ranks = ops.bind(ndtr(y, ops))
            at_low = ranks - BOUNDS_THRESHOLD < 0.0
            at_high = ranks + BOUNDS_THRESHOLD > 1.0
        else:
            ranks = y
            at_low = ranks == 0.0
            at_high = ranks == 1.0
        count = ops.bind(ops.search(t["references"], ranks))
        point = count - 1
        reference = ops.bind(ops.gather(t["references"], point))
        value = ops.bind(ops.gather(t["quantiles"], point))
        interpolated = ops.gather(t["inverse_slopes"], point) * (ranks - reference) + value
        values = ops.where(
            count == 0,
            t["low"],
            ops.where(count == t["point_count"], t["high"], ops.where(reference == ranks, value, interpolated)),
        )
        values = ops.where(at_low, t["low"], ops.where(at_high, t["high"], values))
        return ops.where(ops.is_finite(y), values, y)

    def output_range(self, operands: Mapping[str, Any], params: QuantileParams, stats: Mapping[str, Any]):
        return NORMAL_CLIP_BOUNDS if params.output == "normal" else (0.0, 1.0)

    def describe(self, values: Mapping[str, Any], params: QuantileParams) -> str:
        return f"{len(values['quantiles'])} quantiles -> {params.output}"


register(Quantile())
