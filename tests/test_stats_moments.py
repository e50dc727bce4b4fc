"""MomentsState / FeatureStatsCombiner against exact rational references."""

from __future__ import annotations

import copy
import json
import math
import pickle
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from core_support import exact_mean_var
from hypothesis import given, settings
from hypothesis import strategies as st

from normcore.stats import ColumnRequest, FeatureStatsCombiner, MomentsState, StatsAccumulator

N = 20_000
TOLERANCE = 1e-12


def _hard_columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261122)
    mixed = 1e6 + rng.standard_normal(N)
    mixed[rng.random(N) < 0.05] = np.nan
    mixed[rng.random(N) < 0.01] = np.inf
    mixed[rng.random(N) < 0.01] = -np.inf
    return {
        "offset_1e9": 1e9 + rng.standard_normal(N),
        "offset_1e12": 1e12 + rng.standard_normal(N),
        "offset_1e15": 1e15 + 16 * rng.standard_normal(N),
        "negative_offset_1e12": -1e12 + rng.standard_normal(N),
        "float32": (1e4 + rng.standard_normal(N)).astype(np.float32),
        "float16": rng.standard_normal(N).astype(np.float16),
        "int64": rng.integers(-(2**40), 2**40, N, dtype=np.int64),
        "int8": rng.integers(-128, 127, N, dtype=np.int8),
        "uint32": rng.integers(0, 2**32 - 1, N, dtype=np.uint32),
        "cauchy": 1e3 * rng.standard_cauchy(N),
        "pareto": rng.pareto(1.1, N),
        "trend_then_offset": np.concatenate([np.linspace(0, 1e6, N // 2), 1e9 + rng.standard_normal(N // 2)]),
        "nan_inf_mix": mixed,
        "near_constant": 1e9 + rng.integers(0, 2, N) * 2.0**-22,
    }


HARD = _hard_columns()


def _fit(values: np.ndarray, batch: int = 1_000, nulls: np.ndarray | None = None) -> MomentsState:
    combiner = FeatureStatsCombiner([ColumnRequest("x")])
    accumulator = combiner.create_accumulator()
    for start in range(0, len(values), batch):
        chunk = values[start : start + batch]
        mask = None if nulls is None else nulls[start : start + batch]
        combiner.add_batch(accumulator, pa.record_batch({"x": pa.array(chunk, mask=mask)}))
    return accumulator.columns["x"].moments


def _relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a)


@pytest.mark.parametrize("name", sorted(HARD))
def test_moments_equal_exact_reference(name: str) -> None:
    values = HARD[name]
    state = _fit(values)
    as_float = values.astype(np.float64)
    finite = as_float[np.isfinite(as_float)]
    mean, var = exact_mean_var(finite)
    assert state.count == finite.size
    assert state.nan_count == int(np.isnan(as_float).sum())
    assert state.inf_count == int(np.isinf(as_float).sum())
    assert _relative(state.mean, mean) <= TOLERANCE
    assert _relative(state.variance(0), var) <= TOLERANCE
    assert state.min == finite.min() and state.max == finite.max()
    assert state.max_abs == np.abs(finite).max()
    n = finite.size
    assert _relative(state.variance(1), var * n / (n - 1)) <= TOLERANCE


def _naive_variance(values: np.ndarray) -> float:
    return float(np.mean(values * values) - np.mean(values) ** 2)


def _plain_chan_variance(values: np.ndarray, chunk: int) -> float:
    # What scikit-learn's partial_fit, TF Transform and Spark do: merge per-chunk
    # (count, mean, M2) of the raw values with Chan's formula.
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        n_b, mean_b = len(part), float(np.mean(part))
        m2_b = float(np.sum((part - mean_b) ** 2))
        delta = mean_b - mean
        total = count + n_b
        mean += delta * n_b / total
        m2 += m2_b + delta * delta * count * n_b / total
        count = total
    return m2 / count


@pytest.mark.parametrize(("offset", "chan_loss"), [(1e9, 1e-11), (1e12, 1e-7)])
def test_textbook_formulas_fail_where_ours_is_exact(offset: float, chan_loss: float) -> None:
    rng = np.random.default_rng(5)
    values = offset + rng.standard_normal(N)
    _, var = exact_mean_var(values)
    ours = _relative(_fit(values, batch=100).variance(0), var)
    naive = _relative(_naive_variance(values), var)
    chan = _relative(_plain_chan_variance(values, 100), var)
    assert ours <= TOLERANCE
    assert naive > 1e-3, "sum of squares should lose everything at this offset"
    assert chan > chan_loss, "plain Chan merging on raw values should lose precision here"


def test_nulls_are_counted_and_left_out() -> None:
    rng = np.random.default_rng(3)
    values = 1e9 + rng.standard_normal(5_000)
    nulls = rng.random(5_000) < 0.1
    state = _fit(values, batch=333, nulls=nulls)
    mean, var = exact_mean_var(values[~nulls])
    assert state.null_count == int(nulls.sum())
    assert state.count == int((~nulls).sum())
    assert _relative(state.mean, mean) <= TOLERANCE
    assert _relative(state.variance(0), var) <= TOLERANCE


def test_only_non_finite_values_leave_an_empty_state() -> None:
    state = _fit(np.array([np.nan, np.inf, -np.inf, np.nan]))
    assert (state.count, state.nan_count, state.inf_count) == (0, 2, 2)
    assert math.isnan(state.mean) and state.summary()["mean"] is None


def _states_of_chunks(values: np.ndarray, chunk: int) -> list[MomentsState]:
    return [MomentsState().add_values(values[i : i + chunk]) for i in range(0, len(values), chunk)]


def _assert_close(merged: MomentsState, whole: MomentsState) -> None:
    assert merged.count == whole.count
    assert (merged.nan_count, merged.inf_count, merged.null_count) == (
        whole.nan_count,
        whole.inf_count,
        whole.null_count,
    )
    assert merged.min == whole.min and merged.max == whole.max
    # A mean is accurate relative to the data's scale: when it cancels to nearly zero
    # (|mean| << std), ulps of the spread are what any float summation can promise.
    scale = max(abs(whole.mean), math.sqrt(whole.variance(0)))
    assert abs(merged.mean - whole.mean) <= TOLERANCE * scale
    assert _relative(merged.variance(0), whole.variance(0)) <= TOLERANCE


@settings(max_examples=40, deadline=None)
@given(
    offset=st.sampled_from([0.0, 1e9, -1e12, 1e12]),
    scale=st.sampled_from([1e-3, 1.0, 1e4]),
    n=st.integers(min_value=1, max_value=400),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    chunk_choice=st.sampled_from(["1", "2", "50", "n", "n+42"]),
    data=st.data(),
)
def test_merge_of_split_equals_fit_in_any_order(offset, scale, n, seed, chunk_choice, data) -> None:
    rng = np.random.default_rng(seed)
    values = offset + scale * rng.standard_normal(n)
    values[rng.random(n) < 0.05] = np.nan
    chunk = {"1": 1, "2": 2, "50": 50, "n": n, "n+42": n + 42}[chunk_choice]
    states = _states_of_chunks(values, chunk)
    order = data.draw(st.permutations(range(len(states))))
    merged = MomentsState()
    for index in order:
        merged.merge(states[index])
    whole = MomentsState().add_values(values)
    if whole.count:
        _assert_close(merged, whole)
    else:
        assert merged.count == 0 and merged.nan_count == whole.nan_count


def test_merge_is_associative_commutative_and_fed_by_a_generator() -> None:
    rng = np.random.default_rng(9)
    parts = [1e12 + rng.standard_normal(1_000) for _ in range(3)]
    a, b, c = (MomentsState().add_values(p) for p in parts)
    left = copy.copy(a).merge(b).merge(c)
    right = copy.copy(a).merge(copy.copy(b).merge(c))
    swapped = copy.copy(c).merge(a).merge(b)
    for other in (right, swapped):
        _assert_close(left, other)
    combiner = FeatureStatsCombiner([ColumnRequest("x")])
    accumulators = (combiner.add_batch(combiner.create_accumulator(), {"x": p}) for p in parts)
    merged = combiner.merge_accumulators(accumulators)
    _assert_close(merged.columns["x"].moments, MomentsState().add_values(np.concatenate(parts)))
    assert merged.rows == 3_000


def test_empty_state_is_an_identity() -> None:
    state = MomentsState().add_values(1e9 + np.arange(10.0))
    before = copy.copy(state)
    assert copy.copy(state).merge(MomentsState()) == before
    assert MomentsState().merge(state) == before


def test_states_round_trip_through_pickle_and_json() -> None:
    combiner = FeatureStatsCombiner([ColumnRequest("x", quantiles=True), ColumnRequest("y")])
    rng = np.random.default_rng(1)
    accumulator = combiner.add_batch(
        combiner.create_accumulator(), {"x": rng.standard_normal(5_000), "y": 1e9 + rng.standard_normal(5_000)}
    )
    for restored in (
        pickle.loads(pickle.dumps(accumulator)),
        StatsAccumulator.from_dict(json.loads(json.dumps(accumulator.to_dict()))),
    ):
        assert restored.rows == accumulator.rows
        for name in ("x", "y"):
            assert restored.columns[name].moments == accumulator.columns[name].moments
        assert restored.columns["x"].sketch.to_dict() == accumulator.columns["x"].sketch.to_dict()
    empty = MomentsState()
    assert MomentsState.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


@pytest.mark.parametrize(
    "values",
    [
        [1e300, -1e300, 5.0],
        [1.6e308, 1.6e308, 1.6e308],
        [1.7e308, 1e308, -1e307, 5.0],
        [1e200, 2e200, 3e200, 4e200],
    ],
)
def test_moments_are_exact_to_the_edge_of_float64(values: list[float]) -> None:
    """Squares beyond the float64 range: the state sums scaled by a power of two, so the mean
    and standard deviation stay exact (to a few ulps) wherever they are representable."""
    array = np.asarray(values)
    exact = [Fraction(v) for v in values]
    mean = sum(exact) / len(exact)
    variance = sum((v - mean) ** 2 for v in exact) / len(exact)
    state = MomentsState().add_values(array[:2]).merge(MomentsState().add_values(array[2:]))
    # The square root of an exact rational, through integer square roots (no float overflow).
    std = float(Fraction(math.isqrt(int(variance * 10**1400)), 10**700))
    assert state.std() == pytest.approx(std, rel=1e-14, abs=0)
    # The mean to a few ulps of max(|mean|, std), as MomentsState documents.
    assert state.mean == pytest.approx(float(mean), rel=0, abs=1e-15 * max(abs(float(mean)), std))


def test_kernel_reads_any_float64_layout_and_refuses_other_buffers() -> None:
    from normcore.stats._moments import moments_kernel

    values = HARD["nan_inf_mix"]
    strided = np.repeat(values, 2)[::2]  # a view with stride 16 bytes
    assert not strided.flags.c_contiguous
    from_view = MomentsState().add_values(strided)
    from_copy = MomentsState().add_values(values.copy())
    assert from_view.to_dict() == from_copy.to_dict()
    reference_mean, reference_var = exact_mean_var(values[np.isfinite(values)])
    assert _relative(from_view.mean, reference_mean) <= TOLERANCE
    assert _relative(from_view.variance(0), reference_var) <= TOLERANCE
    with pytest.raises(TypeError, match="float64"):
        moments_kernel(values.astype(np.float32), 0.0)
    with pytest.raises(ValueError, match="contiguous"):
        moments_kernel(strided, 0.0)


@pytest.mark.parametrize("n", [1, 3, 8191, 8192, 8193, 3 * 8192 + 5])
def test_kernel_blocks_signed_zeros_and_extremes(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.choice([-0.0, 0.0, 5e-324, -5e-324, 1e150, -1e150, 2.0**-1074], size=n)
    state = MomentsState().add_values(values)
    assert state.count == n
    assert state.min == values.min() and state.max == values.max()
    finite = [Fraction(v) for v in values]
    exact_mean = sum(finite) / n
    # The mean of values of both signs cancels: its error is relative to the values' scale.
    assert abs(state.mean - float(exact_mean)) <= TOLERANCE * np.abs(values).max()
    exact_var = sum((v - exact_mean) ** 2 for v in finite) / n
    assert _relative(state.variance(0), float(exact_var)) <= TOLERANCE
