"""The check plan against independent NumPy / pandas computations (no Great Expectations)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

import normcore
from normcore.artifact import load_artifact
from normcore.config import ValidationConfig
from normcore.quality.checks import ROUNDING, build_checks, expected_ranges


def _plan(artifact, rows: int, **settings):
    return build_checks(
        artifact,
        ValidationConfig(**settings),
        rows_checked=rows,
        expected_rows=rows,
        rows_origin="test",
        passthrough=None,
        output_columns=artifact.feature_names,
    )


def _check(plan, expectation: str, column: str):
    return next(c for c in plan.checks if c.expectation == expectation and c.column == column)


def test_expected_ranges_follow_each_method(fitted, raw_table):
    artifact = load_artifact(fitted.artifact)
    ranges = expected_ranges(artifact, widen=False)
    price = raw_table.column("price").to_numpy(zero_copy_only=False)
    mean, std = np.nanmean(price), np.nanstd(price)
    assert ranges["price"] == pytest.approx(
        ((np.nanmin(price) - mean) / std, (np.nanmax(price) - mean) / std), rel=1e-9
    )
    assert ranges["rate"] == (-1.0, 2.0)
    assert ranges["count"] == ranges["level"] == (-1.0, 1.0)
    assert ranges["score"] == (0.0, 1.0)
    latency = raw_table.column("latency").to_numpy()
    robust = artifact.transform("latency").values
    shift, scale = robust["shift"], robust["scale"]
    reference = ((latency.min() - shift) / scale, (latency.max() - shift) / scale)
    assert ranges["latency"] == pytest.approx(reference, rel=1e-12)
    for name, (low, high) in expected_ranges(artifact).items():
        nominal_low, nominal_high = ranges[name]
        pad = ROUNDING * max(1.0, abs(nominal_low), abs(nominal_high))
        assert (low, high) == pytest.approx((nominal_low - pad, nominal_high + pad), rel=1e-15, abs=0)


def test_every_fitted_value_lies_in_its_range(fitted):
    artifact = load_artifact(fitted.artifact)
    output = ds.dataset(fitted.output).to_table()
    for name, (low, high) in expected_ranges(artifact).items():
        values = output.column(name).to_numpy(zero_copy_only=False)
        values = values[~np.isnan(values)]
        assert values.min() >= low and values.max() <= high, name


@pytest.mark.parametrize("ddof", [0, 1])
def test_zscore_checks_centre_on_the_sample_std_gx_computes(ddof):
    data = np.random.default_rng(3).lognormal(3.0, 0.5, 1_000)
    artifact = normcore.fit({"x": data}, features="x:zscore", ddof=ddof)
    normalized = pd.Series(normcore.Normalizer.from_artifact(artifact).transform(data.reshape(-1, 1))[:, 0])
    plan = _plan(artifact, data.size)
    mean_check = _check(plan, "ExpectColumnMeanToBeBetween", "x").kwargs
    std_check = _check(plan, "ExpectColumnStdevToBeBetween", "x").kwargs
    centre = (std_check["min_value"] + std_check["max_value"]) / 2
    assert centre == pytest.approx(normalized.std(ddof=1), rel=1e-12)
    assert centre == pytest.approx(1.0 if ddof else np.sqrt(data.size / (data.size - 1)), rel=1e-12)
    assert mean_check["min_value"] < normalized.mean() < mean_check["max_value"]
    assert (mean_check["min_value"] + mean_check["max_value"]) / 2 == pytest.approx(0.0, abs=1e-12)


def _fit_reference(rows: int):
    reference = np.random.default_rng(100).normal(10.0, 2.0, rows)
    spec = [{"name": "z", "method": "zscore"}, {"name": "r", "method": "robust"}, {"name": "q", "method": "quantile"}]
    artifact = normcore.fit({"z": reference, "r": reference, "q": reference}, features=spec)
    return artifact, normcore.Normalizer.from_artifact(artifact)


def _violations(plan, normalizer, data: np.ndarray) -> list[str]:
    """Aggregate checks of ``plan`` that ``data`` (raw) breaks, evaluated with pandas."""
    frame = normalizer.transform(pd.DataFrame({"z": data, "r": data, "q": data}))
    broken = []
    for check in plan.checks:
        if check.row_level:
            continue
        column = frame[check.column]
        if check.expectation == "ExpectColumnMeanToBeBetween":
            observed = [column.mean()]
            bounds = [(check.kwargs["min_value"], check.kwargs["max_value"])]
        elif check.expectation == "ExpectColumnStdevToBeBetween":
            observed = [column.std(ddof=1)]
            bounds = [(check.kwargs["min_value"], check.kwargs["max_value"])]
        else:
            ranges = check.kwargs["quantile_ranges"]
            observed = column.quantile(ranges["quantiles"], interpolation="nearest").tolist()
            bounds = ranges["value_ranges"]
        if any(not low <= value <= high for value, (low, high) in zip(observed, bounds, strict=True)):
            broken.append(f"{check.column}:{check.expectation}")
    return broken


def test_aggregate_checks_accept_fresh_samples_and_reject_shifted_ones():
    artifact, normalizer = _fit_reference(20_000)
    rows = 2_000
    plan = _plan(artifact, rows)
    fresh = [_violations(plan, normalizer, np.random.default_rng(seed).normal(10.0, 2.0, rows)) for seed in range(20)]
    assert sum(1 for broken in fresh if broken) == 0, fresh
    for seed in range(5):
        shifted = np.random.default_rng(seed).normal(10.0 + 0.5 * 2.0, 2.0, rows)
        broken = _violations(plan, normalizer, shifted)
        assert {"z:ExpectColumnMeanToBeBetween", "r:ExpectColumnQuantileValuesToBeBetween"} <= set(broken)
        assert "q:ExpectColumnQuantileValuesToBeBetween" in broken
    wider = np.random.default_rng(0).normal(10.0, 2.0 * 1.3, rows)
    assert "z:ExpectColumnStdevToBeBetween" in _violations(plan, normalizer, wider)


def test_plan_checks_not_null_only_where_the_fit_saw_no_missing_value(fitted):
    artifact = load_artifact(fitted.artifact)
    plan = _plan(artifact, artifact.rows)
    not_null = {c.column for c in plan.checks if c.expectation == "ExpectColumnValuesToNotBeNull"}
    assert not_null == {"count", "latency", "score", "level"}  # price has nulls, rate NaN
    assert plan.notes == ("no --source: pass-through columns are not compared (only the row count)",)


def test_keyed_artifact_checks_ranges_over_every_key():
    rng = np.random.default_rng(8)
    group = np.repeat(["a", "b"], 500)
    x = np.concatenate([rng.normal(0, 1, 500), rng.normal(100, 10, 500)])
    artifact = normcore.fit({"g": group, "x": x}, features="x:zscore", key="g")
    plan = _plan(artifact, 1_000)
    low, high = plan.ranges["x"]
    per_key = []
    for _key, values in (("a", x[:500]), ("b", x[500:])):
        per_key.append(((values.min() - values.mean()) / values.std(), (values.max() - values.mean()) / values.std()))
    assert low <= min(r[0] for r in per_key) and high >= max(r[1] for r in per_key)
    assert not any(c.expectation == "ExpectColumnMeanToBeBetween" for c in plan.checks)
    assert any("keyed artifact" in note for note in plan.notes)
