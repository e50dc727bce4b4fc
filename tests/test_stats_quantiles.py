"""QuantileSketch: NumPy-exact while small, within its rank error when estimating."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from normcore.stats import QuantileSketch
from normcore.stats.compare import population_stability_index, standardized_mean_shift, variance_ratio

PERCENTS = [0, 0.5, 1, 5, 10, 25, 33.3, 50, 66.6, 75, 90, 99, 99.9, 100]


@pytest.mark.parametrize("n", [1, 2, 7, 100, 2_000])
def test_exact_sketch_equals_numpy_percentile(n: int) -> None:
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(0, 10, n), 1)  # ties included
    sketch = QuantileSketch().add_values(values)
    assert sketch.rank_error == 0.0
    np.testing.assert_array_equal(sketch.percentiles(PERCENTS), np.percentile(values, PERCENTS))


def test_estimating_sketch_is_within_its_rank_error_and_keeps_exact_extremes() -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_cauchy(300_000)
    sketch = QuantileSketch()
    for chunk in np.array_split(values, 7):
        sketch.merge(QuantileSketch().add_values(chunk))
    error = sketch.rank_error
    assert 0 < error < 0.002
    ordered = np.sort(values)
    estimates = sketch.percentiles(PERCENTS)
    ranks = np.searchsorted(ordered, estimates) / ordered.size
    assert np.all(np.abs(ranks - np.asarray(PERCENTS) / 100) <= error + 1 / ordered.size)
    assert estimates[0] == ordered[0] and estimates[-1] == ordered[-1]


@pytest.mark.parametrize("batches", [1, 16, 5_000])
@pytest.mark.parametrize("kind", ["normal", "cauchy", "sorted", "reversed", "ties"])
def test_rank_error_holds_for_any_batching(kind: str, batches: int) -> None:
    rng = np.random.default_rng(5)
    values = {
        "normal": rng.normal(0, 1, 400_000),
        "cauchy": rng.standard_cauchy(400_000),
        "sorted": np.arange(400_000.0),
        "reversed": np.arange(400_000.0)[::-1].copy(),
        "ties": np.round(rng.normal(0, 1, 400_000), 1),
    }[kind]
    sketch = QuantileSketch()
    for chunk in np.array_split(values, batches):
        sketch.add_values(chunk)
    ordered = np.sort(values)
    percents = np.linspace(0, 100, 2001)
    estimates = sketch.percentiles(percents)
    # The rank interval each estimate occupies (ties span several ranks).
    low = np.searchsorted(ordered, estimates, side="left") / ordered.size
    high = np.searchsorted(ordered, estimates, side="right") / ordered.size
    target = percents / 100
    worst = np.maximum(0.0, np.maximum(low - target, target - high)).max()
    assert 0 < sketch.rank_error < 0.0015
    assert worst <= sketch.rank_error + 1 / ordered.size


def test_same_updates_give_the_same_sketch_bit_for_bit() -> None:
    rng = np.random.default_rng(9)
    chunks = np.array_split(rng.lognormal(0, 2, 300_000), 23)

    def build() -> dict:
        left, right = QuantileSketch(), QuantileSketch()
        for index, chunk in enumerate(chunks):
            (left if index % 2 else right).add_values(chunk)
        return left.merge(right).to_dict()

    first, second = build(), build()
    assert first["compactions"] > 0
    assert first == second


@pytest.mark.parametrize("zeros", [0.0, 0.3, 0.9])
def test_level_zero_sort_is_numpys_stable_sort_bit_for_bit(zeros: float) -> None:
    # The sketch sorts its unsorted level with NumPy's unstable sort and restores the order
    # of 0.0 / -0.0 (equal, different bits); a wrong restore changes the sketch's bits.
    from normcore.stats.quantiles import _sorted_stably

    rng = np.random.default_rng(int(zeros * 10))
    for size in (0, 1, 2, 17, 1_000, 40_000):
        values = np.round(rng.normal(size=size), 2) * (rng.random(size) >= zeros)
        values = np.where(rng.random(size) < 0.5, -values, values)  # -0.0 among the zeros
        expected = np.sort(values, kind="stable")
        assert np.array_equal(_sorted_stably(values).view(np.int64), expected.view(np.int64))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sketch", "kll_doubles", "sketch"),
        ("k", 3, "k must be"),
        ("n", -1, "n:"),
        ("levels", "x", "levels"),
        ("data", "@@", "data"),
        ("min", float("nan"), "min"),
    ],
)
def test_inconsistent_state_is_refused_naming_the_field(field: str, value, message: str) -> None:
    state = QuantileSketch(64).add_values(np.arange(1000.0)).to_dict()
    state[field] = value
    with pytest.raises(ValueError, match=message):
        QuantileSketch.from_dict(state)


def test_weights_must_add_up_to_the_count() -> None:
    state = QuantileSketch(64).add_values(np.arange(1000.0)).to_dict()
    state["n"] += 1
    with pytest.raises(ValueError, match="weights"):
        QuantileSketch.from_dict(state)


def test_sketch_round_trips_through_pickle_and_dict() -> None:
    sketch = QuantileSketch(256).add_values(np.arange(10_000.0))
    for restored in (pickle.loads(pickle.dumps(sketch)), QuantileSketch.from_dict(sketch.to_dict())):
        assert restored.k == 256 and restored.n == 10_000
        np.testing.assert_array_equal(restored.percentiles(PERCENTS), sketch.percentiles(PERCENTS))


def test_cdf_counts_values_at_or_below_each_split() -> None:
    sketch = QuantileSketch().add_values(np.array([1.0, 2.0, 2.0, 3.0]))
    np.testing.assert_allclose(sketch.cdf([1.5, 2.0, 3.0]), [0.25, 0.75, 1.0, 1.0])


def test_drift_metrics_against_their_definitions() -> None:
    reference = {"mean": 10.0, "var": 4.0}
    assert standardized_mean_shift(reference, {"mean": 13.0, "var": 1.0}) == pytest.approx(1.5)
    assert variance_ratio(reference, {"mean": 0.0, "var": 9.0}) == pytest.approx(2.25)
    assert standardized_mean_shift({"mean": 1.0, "var": 0.0}, {"mean": 1.0, "var": 0.0}) == 0.0
    assert variance_ratio({"mean": 1.0, "var": 0.0}, {"mean": 1.0, "var": 1.0}) == np.inf
    rng = np.random.default_rng(0)
    base = QuantileSketch().add_values(rng.normal(0, 1, 50_000))
    same = QuantileSketch().add_values(rng.normal(0, 1, 50_000))
    shifted_values = rng.normal(0.5, 1, 50_000)
    shifted = QuantileSketch().add_values(shifted_values)
    # PSI by its definition on the reference deciles, computed with NumPy.
    edges = np.unique(base.percentiles(np.arange(10, 100, 10)))
    expected = np.diff(base.cdf(edges), prepend=0.0)
    actual = np.histogram(shifted_values, bins=np.concatenate([[-np.inf], edges, [np.inf]]))[0] / shifted_values.size
    definition = np.sum((actual - expected) * np.log(actual / expected))
    assert population_stability_index(base, shifted) == pytest.approx(definition, rel=0.05)
    assert population_stability_index(base, same) < 0.01 < 0.1 < population_stability_index(base, shifted)
