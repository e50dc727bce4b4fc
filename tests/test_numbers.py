"""Sane numbers by construction: finite parameters with scale > 0 over the whole float64 range,
or a refusal naming the column; no finite input gives a non-finite output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import normcore
from normcore.cli import main

TINY, HUGE = 5e-324, 1.7976931348623157e308


def _fit(values, method: str, params: dict | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return normcore.fit({"x": np.asarray(values, dtype=np.float64)},
                            features=[{"name": "x", "method": method, "params": params or {}}])  # fmt: skip


@pytest.mark.parametrize(
    "values, exponent",
    [([1.6e308] * 5, 309), ([HUGE, -HUGE], 309), ([TINY, -TINY, 0.0], -323), ([2.2e-308, 1e-310], -307), ([0.01], -2)],
)
def test_decimal_covers_the_whole_float_range(values, exponent: int) -> None:
    fitted = _fit(values, "decimal").transform("x")
    assert fitted.values["exponent"] == exponent
    scaled = fitted.forward(np.asarray(values))
    assert np.all(np.isfinite(scaled)) and np.all(np.abs(scaled) <= 1.0)
    assert np.abs(scaled).max() > 0.1 or max(map(abs, values)) == 0  # the smallest such exponent
    np.testing.assert_allclose(fitted.inverse(scaled), values, rtol=1e-15, atol=0)


@pytest.mark.parametrize("method", ["zscore", "maxabs", "decimal", "quantile", "robust", "log", "identity"])
def test_extreme_but_representable_columns_fit(method: str) -> None:
    """Values near the float64 maximum: every method whose parameters exist fits them."""
    values = np.array([1e308, 1.5e308, 1.2e308, 1.7e308, 1.1e308])
    fitted = _fit(values, method).transform("x")
    outputs = fitted.forward(np.concatenate([values, [0.0, -HUGE, HUGE]]))
    assert np.all(np.isfinite(outputs))


@pytest.mark.parametrize("method", ["zscore", "minmax", "mean", "robust"])
def test_a_range_beyond_float64_is_refused_where_a_shift_is_subtracted(method: str) -> None:
    with pytest.raises(normcore.InputError, match="column 'x'.*overflows float64"):
        _fit([-HUGE, HUGE, 0.0], method)


def test_maxabs_and_decimal_scale_such_a_range() -> None:
    for method in ("maxabs", "decimal"):
        fitted = _fit([-HUGE, HUGE, 0.0], method).transform("x")
        assert np.all(np.abs(fitted.forward(np.array([-HUGE, HUGE]))) <= 1.0)


def test_a_feature_range_wider_than_float64_is_a_config_error(tmp_path, capsys) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("features:\n  - {name: x, method: minmax, params: {feature_range: [-1.0e308, 1.0e308]}}\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "d.parquet")
    assert main(["fit", str(tmp_path / "d.parquet"), "--artifact", str(tmp_path / "a.json"), "--config",
                 str(config)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "features[0].params: feature_range [-1e+308, 1e+308] is wider than float64 can represent" in err
    assert not (tmp_path / "a.json").exists()


@pytest.mark.parametrize("method", ["zscore", "minmax", "mean", "maxabs", "robust", "power", "log", "quantile"])
def test_finite_new_data_far_outside_the_fit_stays_finite(method: str) -> None:
    fitted = _fit(np.random.default_rng(3).normal(0.0, 1e-3, 300), method).transform("x")
    probes = np.array([HUGE, -HUGE, 1e300, -1e300, TINY, 0.0])
    outputs = fitted.forward(probes)
    assert np.all(np.isfinite(outputs)), outputs
    assert np.all(np.isfinite(fitted.inverse(np.array([HUGE, -HUGE, 1e300, 0.0]))))
