"""normcore.stats.ewm (the formulas Beam's RunningNormalize wraps) against a plain-Python reference."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pyarrow as pa
import pytest

from normcore.errors import ConfigError, InputError
from normcore.running import EwmNormalizer, ewm_zscore
from normcore.stats.ewm import EwmMoments, alpha_from_halflife


def reference(values: list[float], alpha: float) -> tuple[float, float]:
    """Weighted mean and population variance, value by value, with math.fsum."""
    finite = [v for v in values if math.isfinite(v)]
    n = len(finite)
    weights = [(1.0 - alpha) ** (n - 1 - i) for i in range(n)]
    total = math.fsum(weights)
    mean = math.fsum(w * v for w, v in zip(weights, finite, strict=True)) / total
    return mean, math.fsum(w * (v - mean) ** 2 for w, v in zip(weights, finite, strict=True)) / total


def data(n: int, offset: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = offset + rng.normal(0.0, 3.0, n)
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.02] = np.inf
    return values


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.01, 1e-6])
@pytest.mark.parametrize("offset", [0.0, 1e9])
@pytest.mark.parametrize("chunk", [1, 2, 50, 600, 642])
def test_blocks_equal_value_by_value_reference(alpha: float, offset: float, chunk: int) -> None:
    values = data(600, offset)
    state = EwmMoments.create(alpha)
    for start in range(0, values.size, chunk):
        state.add_values(values[start : start + chunk])
    mean, var = reference(values.tolist(), alpha)
    assert state.count == int(np.isfinite(values).sum())
    assert state.nan_count == int(np.isnan(values).sum()) and state.inf_count == int(np.isinf(values).sum())
    assert math.isclose(state.mean, mean, rel_tol=1e-14, abs_tol=1e-12)
    assert math.isclose(state.variance(), var, rel_tol=1e-12, abs_tol=1e-300)


def test_merge_is_associative_and_ordered() -> None:
    parts = [data(n, seed=s) for s, n in enumerate([40, 1, 300, 77])]
    alpha = 0.03
    states = [EwmMoments.create(alpha).add_values(p) for p in parts]
    left = pickle.loads(pickle.dumps(EwmMoments.from_dict(states[0].to_dict())))
    for state in states[1:]:
        left.merge(EwmMoments.from_dict(state.to_dict()))
    right = EwmMoments.create(alpha).merge(states[2]).merge(states[3])
    grouped = EwmMoments.from_dict(states[0].to_dict()).merge(states[1]).merge(right)
    mean, var = reference(np.concatenate(parts).tolist(), alpha)
    for state in (left, grouped):
        assert math.isclose(state.mean, mean, rel_tol=1e-13) and math.isclose(state.variance(), var, rel_tol=1e-12)
    reversed_order = EwmMoments.from_dict(states[3].to_dict()).merge(states[0])
    assert not math.isclose(reversed_order.mean, reference(np.concatenate([parts[0], parts[3]]).tolist(), alpha)[0],
                            rel_tol=1e-6)


def test_empty_and_constant_states() -> None:
    empty = EwmMoments.create(0.2)
    assert math.isnan(empty.variance()) and empty.summary()["mean"] is None
    assert ewm_zscore(empty) == (0.0, 1.0)  # identity while empty
    constant = EwmMoments.create(0.2).add_values(np.full(10, 7.0))
    assert constant.variance() == 0.0
    assert ewm_zscore(constant) == (7.0, 1.0)


def test_normalizer_on_record_batches() -> None:
    x = data(200, seed=3)
    batch = pa.RecordBatch.from_pydict({"x": pa.array(x, mask=np.arange(200) % 17 == 0), "n": np.arange(200),
                                        "tag": ["t"] * 200})
    normalizer = EwmNormalizer(["x", "n"], alpha_from_halflife(20.0)).update(batch)
    out = normalizer.transform_batch(batch)
    kept = np.where(np.arange(200) % 17 == 0, np.nan, x)
    mean, var = reference(kept.tolist(), 1 - 0.5 ** (1 / 20))
    got = out.column("x").to_numpy(zero_copy_only=False)
    finite = np.isfinite(kept)
    np.testing.assert_allclose(got[finite], (kept[finite] - mean) / math.sqrt(var), rtol=1e-12)
    assert out.column("x").null_count == batch.column("x").null_count
    assert np.isinf(got[np.isinf(kept)]).all()
    assert out.column("tag").equals(batch.column("tag")) and out.schema.field("n").type == pa.float64()
    assert normalizer.summary()["x"]["null_count"] == batch.column("x").null_count
    restored = EwmNormalizer.from_dict(normalizer.to_dict())
    assert restored.summary() == normalizer.summary()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: EwmMoments.create(0.0), ConfigError),
        (lambda: EwmMoments.create(1.5), ConfigError),
        (lambda: alpha_from_halflife(-1), ConfigError),
        (lambda: EwmNormalizer([], 0.1), ConfigError),
        (lambda: EwmNormalizer(["z"], 0.1).update(pa.RecordBatch.from_pydict({"x": [1.0]})), InputError),
    ],
)
def test_bad_parameters_raise_normcore_errors(call, error) -> None:
    with pytest.raises(error):
        call()
