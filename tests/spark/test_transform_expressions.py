"""The formulas every engine evaluates (normcore.transforms, NumPy adapter) against independent
references: scikit-learn's QuantileTransformer on the very same points, SciPy's ndtri / ndtr.

The Spark Column expressions are built from the same code (tests/spark/test_spark_apply.py
checks that Spark and NumPy agree); here the NumPy evaluation meets other libraries'.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_support import assert_within_ulps
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr as scipy_ndtr
from scipy.special import ndtri as scipy_ndtri
from sklearn.preprocessing import QuantileTransformer

from normcore.transforms import METHODS, Fitted
from normcore.transforms.ops import NUMPY_OPS, ndtr, ndtri

RNG = np.random.default_rng(3)
SPECIALS = np.array([np.nan, np.inf, -np.inf])


def _quantile(points: np.ndarray, output: str) -> Fitted:
    method = METHODS["quantile"]
    references = np.linspace(0, 1, points.size)
    values = {"quantiles": tuple(points.tolist()), "references": tuple(references.tolist())}
    return Fitted(method, method.params({"output": output}), values)


def _sklearn(points: np.ndarray, output: str) -> QuantileTransformer:
    """scikit-learn's transformer holding exactly ``points`` as its quantiles."""
    transformer = QuantileTransformer(n_quantiles=max(points.size, 2), output_distribution=output)
    transformer.fit(np.linspace(0, 1, max(points.size, 2)).reshape(-1, 1))
    transformer.quantiles_ = points.reshape(-1, 1)
    transformer.references_ = np.linspace(0, 1, points.size)
    return transformer


def _probes(points: np.ndarray) -> np.ndarray:
    """Values on, between, just beside and beyond the quantiles."""
    span = float(points[-1] - points[0]) or 1.0
    return np.concatenate(
        [
            points,
            np.nextafter(points, np.inf),
            np.nextafter(points, -np.inf),
            points + 1e-7,
            points - 1e-7,
            RNG.uniform(points[0] - span, points[-1] + span, 2000),
        ]
    )


QUANTILE_POINTS = {
    "distinct": np.sort(RNG.normal(0.0, 1.0, 1000)),
    "ties": np.sort(np.round(RNG.normal(0.0, 1.0, 1000), 1)),
    "tied_ends": np.array([1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]),
    "constant": np.array([2.0, 2.0, 2.0]),
    "two_points": np.array([-1.0, 4.0]),
    "integers": np.sort(RNG.integers(0, 5, 100)).astype(np.float64),
}

#: The uniform map is linear interpolation in both: ours and scikit-learn's (NumPy's interp)
#: round alike but for the order of one addition.
UNIFORM_ULPS = 4
#: The normal output also goes through ndtri (ours vs SciPy's, both Cephes, see below).
NORMAL_ULPS = 16


@pytest.mark.parametrize("output", ["uniform", "normal"])
@pytest.mark.parametrize("case", list(QUANTILE_POINTS))
def test_quantile_map_equals_scikit_learn(case: str, output: str) -> None:
    points = QUANTILE_POINTS[case]
    fitted, reference = _quantile(points, output), _sklearn(points, output)
    values = _probes(points)
    expected = reference.transform(values.reshape(-1, 1)).ravel()
    # Near the 1e-7 bounds scikit-learn compares x +- 1e-7 with the end quantiles: same test.
    assert_within_ulps(fitted.forward(values), expected, NORMAL_ULPS if output == "normal" else UNIFORM_ULPS)
    ranks = np.concatenate([RNG.random(500), [0.0, 1.0]]) if output == "uniform" else np.linspace(-5, 5, 201)
    expected_back = reference.inverse_transform(ranks.reshape(-1, 1)).ravel()
    # normal: a few ulps of ndtr in rank become more ulps of the value along a steep segment.
    assert_within_ulps(fitted.inverse(ranks), expected_back, 64 if output == "normal" else UNIFORM_ULPS)
    outputs = fitted.forward(SPECIALS)
    assert np.isnan(outputs[0]) and outputs[1] == np.inf and outputs[2] == -np.inf


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-20, 20), min_size=2, max_size=40),
    st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=40),
)
def test_quantile_map_equals_scikit_learn_on_any_ties(grid: list[int], values: list[float]) -> None:
    points = np.sort(np.asarray(grid, dtype=np.float64) / 4.0)
    probes = np.concatenate([np.asarray(values), points])
    expected = _sklearn(points, "uniform").transform(probes.reshape(-1, 1)).ravel()
    assert_within_ulps(_quantile(points, "uniform").forward(probes), expected, UNIFORM_ULPS)


#: SciPy's ndtri / ndtr and ours (the same Cephes algorithm, evaluated in another order)
#: differ by up to 4 ulps (measured: 4 for ndtri, 3 for ndtr on 200,000 points).
SCIPY_ULPS = 8


def test_ndtri_and_ndtr_match_scipy() -> None:
    probabilities = np.concatenate(
        [RNG.random(20000), [0.0, 1.0, 1e-300, 1e-20, 1e-7, 1 - 1e-7, 0.5, np.exp(-2), 1 - np.exp(-2), np.exp(-32)]]
    )
    with np.errstate(all="ignore"):
        assert_within_ulps(ndtri(probabilities, NUMPY_OPS), scipy_ndtri(probabilities), SCIPY_ULPS)
        points = np.concatenate([RNG.normal(0.0, 3.0, 20000), np.linspace(-40.0, 40.0, 2001)])
        assert_within_ulps(ndtr(points, NUMPY_OPS), scipy_ndtr(points), SCIPY_ULPS)
