"""Fitted transforms: the parameters every engine applies, and the NumPy reference.

Two kinds cover every method:

* :class:`LinearTransform`: ``y = (x - shift) / scale + offset``, then optionally
  clipped to ``clip``; the inverse is ``x = (y - offset) * scale + shift``.
  ``zscore``, ``minmax``, ``mean``, ``decimal``, ``maxabs``, ``robust`` and
  ``identity`` are all of this form, so NumPy, Arrow, Spark Column expressions and
  torch buffers apply the very same three numbers.
* :class:`QuantileTransform`: piecewise-linear map through ``quantiles`` at
  ``references`` (scikit-learn ``QuantileTransformer`` semantics), optionally
  followed by the standard normal quantile function.

The NumPy methods here are the reference (oracle) every engine is tested against.
Non-finite inputs (NaN, +-inf) pass through unchanged in both directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from normcore.errors import ArtifactError
from normcore.transforms.ops import NUMPY_OPS, ndtr, ndtri

#: scikit-learn's ``BOUNDS_THRESHOLD`` for the quantile transform.
BOUNDS_THRESHOLD = 1e-7


@dataclass(frozen=True)
class LinearTransform:
    """``y = (x - shift) / scale + offset`` (then clipped to ``clip`` if set).

    Attributes
    ----------
    method : str
        The method that produced the parameters (``zscore``, ``minmax``, ...).
    shift, scale, offset : float
        ``scale`` is a positive divisor (1.0 for a constant column).
    clip : tuple of float or None
        ``(low, high)`` bounds applied after the affine map (``minmax`` with
        ``clip: true``); clipped values cannot be inverted exactly.
    """

    method: str
    shift: float
    scale: float
    offset: float = 0.0
    clip: tuple[float, float] | None = None

    kind = "linear"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Transform a float64 array; NaN and +-inf pass through."""
        y = np.subtract(x, self.shift)
        y /= self.scale
        y += self.offset
        if self.clip is not None:
            np.clip(y, self.clip[0], self.clip[1], out=y)
        return _keep_non_finite(x, y)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Undo :meth:`forward`; NaN and +-inf pass through."""
        x = np.subtract(y, self.offset)
        x *= self.scale
        x += self.shift
        return _keep_non_finite(y, x)

    def to_dict(self) -> dict[str, Any]:
        """Fitted fields as written in the artifact."""
        return {
            "kind": self.kind,
            "shift": self.shift,
            "scale": self.scale,
            "offset": self.offset,
            "clip": None if self.clip is None else list(self.clip),
        }


@dataclass(frozen=True)
class QuantileTransform:
    """Map values to ``[0, 1]`` (or a standard normal) through fitted quantiles.

    Attributes
    ----------
    quantiles : tuple of float
        Non-decreasing values at the ``references`` ranks.
    references : tuple of float
        Evenly spaced ranks ``linspace(0, 1, n)``.
    output : {"uniform", "normal"}
        Output distribution.

    Notes
    -----
    A value maps to the mean of forward and backward linear interpolation, so a
    run of tied quantiles sends its value to the middle of its rank interval;
    the lowest / highest quantile map to exactly 0 / 1 (``uniform``). With
    ``normal`` output the result is clipped to
    ``ndtri(1e-7 - eps) .. ndtri(1 - (1e-7 - eps))`` as in scikit-learn.
    """

    method: str
    quantiles: tuple[float, ...]
    references: tuple[float, ...]
    output: str = "uniform"

    kind = "quantile"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Transform a float64 array; NaN and +-inf pass through."""
        quantiles = np.asarray(self.quantiles)
        references = np.asarray(self.references)
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        values = x[finite]
        if self.output == "normal":
            at_low = values - BOUNDS_THRESHOLD < quantiles[0]
            at_high = values + BOUNDS_THRESHOLD > quantiles[-1]
        else:
            at_low = values == quantiles[0]
            at_high = values == quantiles[-1]
        mapped = 0.5 * (
            np.interp(values, quantiles, references) - np.interp(-values, -quantiles[::-1], -references[::-1])
        )
        mapped[at_high] = 1.0
        mapped[at_low] = 0.0
        if self.output == "normal":
            low, high = normal_clip_bounds()
            with np.errstate(all="ignore"):
                mapped = np.clip(ndtri(mapped, NUMPY_OPS), low, high)
        y = x.copy()
        y[finite] = mapped
        return y

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Undo :meth:`forward` (exact between quantiles); NaN and +-inf pass through."""
        quantiles = np.asarray(self.quantiles)
        references = np.asarray(self.references)
        y = np.asarray(y, dtype=np.float64)
        finite = np.isfinite(y)
        ranks = y[finite]
        if self.output == "normal":
            with np.errstate(all="ignore"):
                ranks = ndtr(ranks, NUMPY_OPS)
            at_low = ranks - BOUNDS_THRESHOLD < 0.0
            at_high = ranks + BOUNDS_THRESHOLD > 1.0
        else:
            at_low = ranks == 0.0
            at_high = ranks == 1.0
        values = np.interp(ranks, references, quantiles)
        values[at_high] = quantiles[-1]
        values[at_low] = quantiles[0]
        x = y.copy()
        x[finite] = values
        return x

    def to_dict(self) -> dict[str, Any]:
        """Fitted fields as written in the artifact."""
        return {
            "kind": self.kind,
            "output": self.output,
            "quantiles": list(self.quantiles),
            "references": list(self.references),
        }


FittedTransform = LinearTransform | QuantileTransform


def normal_clip_bounds() -> tuple[float, float]:
    """scikit-learn's clip bounds for ``output="normal"``."""
    margin = BOUNDS_THRESHOLD - np.spacing(1)
    bounds = ndtri(np.array([margin, 1 - margin]), NUMPY_OPS)
    return float(bounds[0]), float(bounds[1])


def transform_from_dict(entry: Mapping[str, Any]) -> FittedTransform:
    """Build the fitted transform described by an artifact's ``transform`` entry.

    Raises
    ------
    ArtifactError
        If a field is missing or has the wrong type.
    """
    try:
        kind = entry["kind"]
        method = str(entry["method"])
        if kind == LinearTransform.kind:
            clip = entry.get("clip")
            return LinearTransform(
                method=method,
                shift=float(entry["shift"]),
                scale=float(entry["scale"]),
                offset=float(entry["offset"]),
                clip=None if clip is None else (float(clip[0]), float(clip[1])),
            )
        if kind == QuantileTransform.kind:
            return QuantileTransform(
                method=method,
                quantiles=tuple(float(v) for v in entry["quantiles"]),
                references=tuple(float(v) for v in entry["references"]),
                output=str(entry["output"]),
            )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ArtifactError(f"transform entry is malformed ({type(exc).__name__}: {exc})") from None
    raise ArtifactError(f"transform kind {kind!r} is unknown; expected 'linear' or 'quantile'")


def _keep_non_finite(source: np.ndarray, result: np.ndarray) -> np.ndarray:
    non_finite = ~np.isfinite(source)
    if non_finite.any():
        result[non_finite] = source[non_finite]
    return result
