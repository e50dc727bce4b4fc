"""The conformity combiner: NumPy reference, merge invariance, pickling, agreement with Great Expectations."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pyarrow as pa
import pytest

from normcore.quality.conformity import ConformityAccumulator, ConformityCombiner

RANGES = {"x": (-1.0, 1.0), "k": (0.0, 10.0)}


def _table(rows: int = 500, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.8, rows)
    x[:6] = [-1.0, 1.0, np.inf, -np.inf, np.nan, 1.0000001]  # bounds are inclusive; +-inf is missing
    x_nulls = rng.random(rows) < 0.05
    x_nulls[:6] = False
    k = rng.integers(-3, 14, rows)
    return pa.table({"x": pa.array(x, mask=x_nulls), "k": pa.array(k, type=pa.int32())})


def _reference(table: pa.Table) -> dict:
    """Counts per column with NumPy (null, NaN and +-inf missing, bounds inclusive)."""
    counts = {}
    for name, (low, high) in RANGES.items():
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        present = values[np.isfinite(values)]
        inside = int(np.sum((present >= low) & (present <= high)))
        counts[name] = (present.size, inside, values.size - present.size, present.min(), present.max())
    return counts


def _counts(accumulator: ConformityAccumulator) -> dict:
    return {n: (f.values, f.in_range, f.missing, f.min, f.max) for n, f in accumulator.columns.items()}


def test_counts_match_numpy():
    table = _table()
    combiner = ConformityCombiner(RANGES)
    accumulator = combiner.add_batch(combiner.create_accumulator(), table)
    assert accumulator.rows == table.num_rows
    assert _counts(accumulator) == _reference(table)
    output = combiner.extract_output(accumulator)
    x_values, x_in = _reference(table)["x"][:2]
    assert output["features"]["x"]["conformity"] == x_in / x_values
    assert output["conformity"] == sum(c[1] for c in _reference(table).values()) / sum(
        c[0] for c in _reference(table).values()
    )


@pytest.mark.parametrize("chunk", [1, 2, 50, 500, 542])
def test_any_split_merged_in_any_order_gives_the_same_counts(chunk):
    table = _table()
    combiner = ConformityCombiner(RANGES)
    parts = [
        combiner.add_batch(combiner.create_accumulator(), batch) for batch in table.to_batches(max_chunksize=chunk)
    ]
    random.Random(chunk).shuffle(parts)
    parts = [pickle.loads(pickle.dumps(part)) for part in parts]
    merged = combiner.merge_accumulators(iter([combiner.create_accumulator(), *parts]))
    assert merged.rows == table.num_rows
    assert _counts(merged) == _reference(table)


def test_an_empty_accumulator_is_an_identity_and_dicts_round_trip():
    combiner = ConformityCombiner(RANGES)
    empty = combiner.create_accumulator()
    assert combiner.extract_output(empty)["conformity"] is None
    filled = combiner.add_batch(combiner.create_accumulator(), _table())
    restored = ConformityAccumulator.from_dict(json.loads(json.dumps(filled.to_dict(), allow_nan=False)))
    assert (restored.columns["x"].min, restored.columns["x"].max) == (
        filled.columns["x"].min,
        filled.columns["x"].max,
    )
    assert np.isfinite(restored.columns["x"].max)
    assert _counts(combiner.merge_accumulators([combiner.create_accumulator(), restored])) == _counts(filled)
    assert combiner.merge_accumulators([]).rows == 0


def test_non_numeric_column_is_refused():
    from normcore.errors import InputError

    combiner = ConformityCombiner({"s": (0.0, 1.0)})
    with pytest.raises(InputError, match="column 's' has type string"):
        combiner.add_batch(combiner.create_accumulator(), pa.table({"s": ["a"]}))


def test_agrees_with_great_expectations():
    import great_expectations as gx

    from normcore.quality.checksum import arrow_to_pandas

    table = _table(2_000, seed=3)
    combiner = ConformityCombiner(RANGES)
    counts = combiner.add_batch(combiner.create_accumulator(), table)
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("t").add_batch_definition_whole_dataframe("b")
    frame = arrow_to_pandas(table)
    frame["x"] = frame["x"].where(np.isfinite(frame["x"]))  # the validators hand +-inf over as missing
    for name, (low, high) in RANGES.items():
        expectation = gx.expectations.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high)
        result = batch.get_batch(batch_parameters={"dataframe": frame}).validate(
            expectation, result_format={"result_format": "SUMMARY"}
        )
        feature = counts.columns[name]
        assert result.result["missing_count"] == feature.missing
        assert result.result["unexpected_count"] == feature.values - feature.in_range
