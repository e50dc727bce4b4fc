"""Every method against scikit-learn / SciPy (bundled real datasets, skewed synthetic data) or
its defining formula."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.special import ndtr
from sklearn import datasets, preprocessing
from sklearn.preprocessing import PowerTransformer

import normcore
from normcore.fitting import ConstantFeatureWarning
from normcore.transforms import Fitted, decimal_exponent

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


# -- power and log (issue 9) ------------------------------------------------------------------

_RNG = np.random.default_rng(21)
SKEWED = {
    "lognormal": _RNG.lognormal(0.0, 1.0, (3000, 1)),
    "exponential": _RNG.exponential(2.0, (3000, 1)),
    "signed_lognormal": (_RNG.choice([-1.0, 1.0, 1.0], 3000) * _RNG.lognormal(1.0, 1.2, 3000)).reshape(-1, 1),
    "left_skewed": -_RNG.gamma(1.5, 4.0, (3000, 1)),
}
#: Every feature of the bundled datasets and the skewed synthetic columns.
POWER_DATA = {**DATASETS, **SKEWED}


def _power_artifact(data: np.ndarray, params: dict | None = None):
    return normcore.fit(data, features=_spec(data, "power", params))


def _plugged(fitted: Fitted, lam: float) -> Fitted:
    """``fitted`` with another lambda and no standardization: the bare transform."""
    return Fitted(fitted.method, fitted.method.params({**fitted.params.model_dump(), "standardize": False}),
                  {**fitted.values, "lambda": lam, "shift": 0.0, "scale": 1.0})  # fmt: skip


@pytest.mark.parametrize("name", sorted(POWER_DATA))
def test_yeo_johnson_matches_scikit_learn(name: str) -> None:
    data = POWER_DATA[name]
    reference = PowerTransformer().fit(data)
    artifact = _power_artifact(data)
    ours = normcore.Normalizer.from_artifact(artifact).transform(data)
    for i, column_name in enumerate(_names(data)):
        x, theirs_lambda = data[:, i], float(reference.lambdas_[i])
        fitted = artifact.transform(column_name)
        # scikit-learn's lambda plugged in: the same transform to 1e-12.
        expected = scipy_stats.yeojohnson(x, theirs_lambda)
        np.testing.assert_allclose(_plugged(fitted, theirs_lambda).forward(x), expected, rtol=1e-12,
                                   atol=1e-12 * np.abs(expected).max())  # fmt: skip
        # Our own lambda is at least as likely as scikit-learn's (to 1e-9 relative).
        ours_ll = scipy_stats.yeojohnson_llf(fitted.values["lambda"], x)
        theirs_ll = scipy_stats.yeojohnson_llf(theirs_lambda, x)
        assert ours_ll >= theirs_ll - 1e-9 * abs(theirs_ll), (column_name, fitted.values["lambda"], theirs_lambda)
    np.testing.assert_allclose(ours, reference.transform(data), rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", ["wine", "lognormal", "exponential"])
def test_box_cox_matches_scipy(name: str) -> None:
    data = POWER_DATA[name]
    columns = [i for i in range(data.shape[1]) if data[:, i].min() > 0]
    data = data[:, columns]
    artifact = _power_artifact(data, {"method": "box-cox"})
    reference = PowerTransformer(method="box-cox").fit(data)
    for i, column_name in enumerate(_names(data)):
        x = data[:, i]
        _, theirs_lambda = scipy_stats.boxcox(x)
        fitted = artifact.transform(column_name)
        expected = scipy_stats.boxcox(x, theirs_lambda)
        np.testing.assert_allclose(_plugged(fitted, theirs_lambda).forward(x), expected, rtol=1e-12,
                                   atol=1e-12 * np.abs(expected).max())  # fmt: skip
        ours_ll = scipy_stats.boxcox_llf(fitted.values["lambda"], x)
        theirs_ll = scipy_stats.boxcox_llf(theirs_lambda, x)
        assert ours_ll >= theirs_ll - 1e-9 * abs(theirs_ll), (column_name, fitted.values["lambda"], theirs_lambda)
    ours = normcore.Normalizer.from_artifact(artifact).transform(data)
    np.testing.assert_allclose(ours, reference.transform(data), rtol=0, atol=1e-3)


@pytest.mark.parametrize("params", [{}, {"method": "box-cox"}, {"standardize": False}])
def test_power_inverse_round_trips(params: dict) -> None:
    data = np.hstack([SKEWED["lognormal"], SKEWED["exponential"]])
    if params.get("method") != "box-cox":
        data = np.hstack([data, SKEWED["signed_lognormal"], SKEWED["left_skewed"]])
    norm = normcore.Normalizer.from_artifact(_power_artifact(data, params))
    restored = norm.inverse_transform(norm.transform(data))
    np.testing.assert_allclose(restored, data, rtol=1e-9, atol=1e-12)


def test_box_cox_refuses_a_column_that_is_not_positive() -> None:
    with pytest.raises(normcore.InputError, match="box-cox needs strictly positive values; its minimum is 0"):
        _power_artifact(np.array([[0.0], [1.0], [2.0]]), {"method": "box-cox"})


def test_power_per_key_equals_a_fit_of_each_key_alone() -> None:
    rows = 1500
    keys = np.array(["a", "b", "c"])[np.arange(rows) % 3]
    values = np.where(keys == "a", _RNG.lognormal(0, 1, rows), np.where(keys == "b", _RNG.exponential(3, rows),
                                                                         _RNG.normal(5, 1, rows)))  # fmt: skip
    table = {"x": values, "k": keys}
    keyed = normcore.fit(table, features=[{"name": "x", "method": "power"}], key="k")
    whole = normcore.fit({"x": values}, features=[{"name": "x", "method": "power"}])
    assert keyed.transform("x").values["lambda"] == whole.transform("x").values["lambda"]
    for value in ("a", "b", "c"):
        alone = normcore.fit({"x": values[keys == value]}, features=[{"name": "x", "method": "power"}])
        assert keyed.transform("x", value).values == alone.transform("x").values


@pytest.mark.parametrize("standardize", [False, True])
def test_log_is_signed_log1p_then_standardized(standardize: bool) -> None:
    data = SKEWED["signed_lognormal"]
    artifact = normcore.fit(data, features=_spec(data, "log", {"standardize": standardize}))
    logged = np.sign(data) * np.log1p(np.abs(data))
    expected = (logged - logged.mean()) / logged.std() if standardize else logged
    norm = normcore.Normalizer.from_artifact(artifact)
    np.testing.assert_allclose(norm.transform(data), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(norm.inverse_transform(norm.transform(data)), data, rtol=1e-12, atol=1e-12)
    stats = artifact.feature("f0")["stats"]  # the statistics of the logged values
    assert stats["mean"] == pytest.approx(float(logged.mean()), rel=1e-12)
    assert stats["max"] == float(logged.max())
