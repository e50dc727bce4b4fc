"""Every method against scikit-learn (bundled real datasets) or its defining formula."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import ndtr
from sklearn import datasets, preprocessing

import normcore
from normcore.fitting import ConstantFeatureWarning
from normcore.transforms import decimal_exponent

DATASETS = {
    "wine": datasets.load_wine().data,
    "breast_cancer": datasets.load_breast_cancer().data,
    "diabetes": datasets.load_diabetes().data,
}


def _names(data: np.ndarray) -> list[str]:
    return [f"f{i}" for i in range(data.shape[1])]


def _spec(data: np.ndarray, method: str, params: dict | None = None) -> list[dict]:
    return [{"name": name, "method": method, "params": params or {}} for name in _names(data)]


def _normalizer(data: np.ndarray, method: str, params: dict | None = None, **kwargs) -> normcore.Normalizer:
    artifact = normcore.fit(data, features=_spec(data, method, params), **kwargs)
    return normcore.Normalizer.from_artifact(artifact)


@pytest.fixture(params=sorted(DATASETS))
def data(request) -> np.ndarray:
    return DATASETS[request.param]


@pytest.mark.parametrize("ddof", [0, 1])
def test_zscore_equals_standard_scaler(data: np.ndarray, ddof: int) -> None:
    expected = preprocessing.StandardScaler().fit_transform(data)
    if ddof == 1:
        n = data.shape[0]
        expected = expected * math.sqrt((n - 1) / n)
    ours = _normalizer(data, "zscore", ddof=ddof).transform(data)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("feature_range", "clip"), [((0.0, 1.0), False), ((-1.0, 2.0), False), ((-1.0, 2.0), True)])
def test_minmax_equals_minmax_scaler(data: np.ndarray, feature_range, clip: bool) -> None:
    half = data.shape[0] // 2
    train, new = data[:half], data[half:]
    reference = preprocessing.MinMaxScaler(feature_range=feature_range, clip=clip).fit(train)
    ours = _normalizer(train, "minmax", {"feature_range": list(feature_range), "clip": clip})
    for rows in (train, new):
        np.testing.assert_allclose(ours.transform(rows), reference.transform(rows), rtol=1e-12, atol=1e-12)
    if clip:
        assert ours.transform(new).min() >= feature_range[0] and ours.transform(new).max() <= feature_range[1]


def test_maxabs_equals_maxabs_scaler(data: np.ndarray) -> None:
    expected = preprocessing.MaxAbsScaler().fit_transform(data)
    np.testing.assert_allclose(_normalizer(data, "maxabs").transform(data), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("quantile_range", [(25.0, 75.0), (10.0, 90.0)])
@pytest.mark.parametrize("unit_variance", [False, True])
def test_robust_equals_robust_scaler(data: np.ndarray, quantile_range, unit_variance: bool) -> None:
    # Below ~2k rows the KLL sketch is exact, so the match is to rounding.
    reference = preprocessing.RobustScaler(quantile_range=quantile_range, unit_variance=unit_variance)
    expected = reference.fit_transform(data)
    params = {"quantile_range": list(quantile_range), "unit_variance": unit_variance}
    np.testing.assert_allclose(_normalizer(data, "robust", params).transform(data), expected, rtol=1e-12, atol=1e-12)


def test_robust_within_rank_error_when_the_sketch_estimates() -> None:
    rng = np.random.default_rng(4)
    values = rng.lognormal(3, 1, size=(200_000, 1))
    transform = normcore.fit(values, features=[{"name": "x", "method": "robust"}]).feature("x")["transform"]
    rank_error = transform["rank_error"]
    assert 0 < rank_error < 0.005
    ordered = np.sort(values[:, 0])
    median_rank = np.searchsorted(ordered, transform["shift"]) / ordered.size
    assert abs(median_rank - 0.5) <= rank_error
    # Each end of the IQR sits within the rank error of its target rank.
    narrowest = np.quantile(ordered, 0.75 - rank_error) - np.quantile(ordered, 0.25 + rank_error)
    widest = np.quantile(ordered, 0.75 + rank_error) - np.quantile(ordered, 0.25 - rank_error)
    assert narrowest <= transform["scale"] <= widest


@pytest.mark.parametrize("output", ["uniform", "normal"])
@pytest.mark.parametrize("n_quantiles", [100, 1000])
def test_quantile_equals_quantile_transformer(data: np.ndarray, output: str, n_quantiles: int) -> None:
    half = data.shape[0] // 2
    train, new = data[:half], data[half:]
    reference = preprocessing.QuantileTransformer(n_quantiles=min(n_quantiles, half), output_distribution=output)
    reference.fit(train)
    ours = _normalizer(train, "quantile", {"n_quantiles": n_quantiles, "output": output})
    for rows in (train, new):
        np.testing.assert_allclose(ours.transform(rows), reference.transform(rows), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(
            ours.inverse_transform(ours.transform(rows)),
            reference.inverse_transform(reference.transform(rows)),
            rtol=1e-9,
            atol=1e-9,
        )


@pytest.mark.parametrize(
    ("max_abs", "exponent"), [(999.0, 3), (1000.0, 3), (1000.5, 4), (0.005, -2), (0.01, -2), (1.0, 0), (0.0, 0)]
)
def test_decimal_exponent_boundaries(max_abs: float, exponent: int) -> None:
    assert decimal_exponent(max_abs) == exponent
    values = np.array([[-max_abs], [max_abs / 3], [max_abs]])
    scaled = _normalizer(values, "decimal").transform(values)
    assert np.all(np.abs(scaled) <= 1.0)
    if max_abs:
        assert np.abs(scaled).max() > 0.1
        np.testing.assert_allclose(scaled, values / 10.0**exponent, rtol=1e-15)


def test_decimal_and_mean_normalization_formulas(data: np.ndarray) -> None:
    max_abs = np.abs(data).max(axis=0)
    exponents = np.array([decimal_exponent(m) for m in max_abs])
    np.testing.assert_allclose(_normalizer(data, "decimal").transform(data), data / 10.0**exponents, rtol=1e-15)
    expected = (data - data.mean(axis=0)) / (data.max(axis=0) - data.min(axis=0))
    np.testing.assert_allclose(_normalizer(data, "mean").transform(data), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("method", ["zscore", "minmax", "mean", "decimal", "maxabs", "robust", "quantile", "identity"])
def test_inverse_undoes_transform(data: np.ndarray, method: str) -> None:
    normalizer = _normalizer(data, method)
    restored = normalizer.inverse_transform(normalizer.transform(data))
    np.testing.assert_allclose(restored, data, rtol=1e-12, atol=1e-12 * np.abs(data).max())


@pytest.mark.parametrize(
    ("method", "constant_value"), [("zscore", 7.5), ("minmax", 7.5), ("mean", 7.5), ("robust", 7.5), ("maxabs", 0.0)]
)
def test_constant_column_gets_scale_one_and_a_warning(method: str, constant_value: float) -> None:
    # Zero spread: zero variance / range / IQR; for maxabs only max|x| = 0 is degenerate
    # (MaxAbsScaler scales a constant 7.5 column by 7.5).
    values = np.column_stack([np.full(50, constant_value), np.arange(50.0)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        artifact = normcore.fit(values, features=[{"name": "c", "method": method}, {"name": "v", "method": method}])
    assert [str(w.message) for w in caught if w.category is ConstantFeatureWarning] == [
        "feature 'c' is constant (zero spread); its scale is set to 1"
    ]
    transform = artifact.feature("c")["transform"]
    assert transform["constant"] is True and transform["scale"] == 1.0
    assert artifact.feature("v")["transform"]["constant"] is False
    expected = getattr(
        preprocessing,
        {
            "zscore": "StandardScaler",
            "minmax": "MinMaxScaler",
            "mean": "StandardScaler",
            "robust": "RobustScaler",
            "maxabs": "MaxAbsScaler",
        }[method],
    )().fit_transform(values)
    if method != "mean":
        np.testing.assert_allclose(normcore.Normalizer(artifact).transform(values)[:, 0], expected[:, 0], atol=1e-15)


def test_non_finite_values_pass_through_every_method() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(10, 2, size=(500, 1))
    probe = np.array([[np.nan], [np.inf], [-np.inf], [10.0]])
    for method in ("zscore", "minmax", "mean", "decimal", "maxabs", "robust", "quantile", "identity"):
        normalizer = _normalizer(train, method)
        for result in (normalizer.transform(probe), normalizer.inverse_transform(probe)):
            assert np.isnan(result[0, 0]) and result[1, 0] == np.inf and result[2, 0] == -np.inf, method
            assert np.isfinite(result[3, 0])


def test_quantile_normal_output_is_clipped_like_scikit_learn() -> None:
    train = np.arange(100.0).reshape(-1, 1)
    normalizer = _normalizer(train, "quantile", {"output": "normal"})
    extremes = normalizer.transform(np.array([[-1e9], [1e9]]))
    reference = preprocessing.QuantileTransformer(n_quantiles=100, output_distribution="normal").fit(train)
    np.testing.assert_allclose(extremes, reference.transform(np.array([[-1e9], [1e9]])), rtol=1e-12)
    assert 0 < ndtr(extremes[1, 0]) < 1
