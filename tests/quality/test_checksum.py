"""Pass-through checksums: independent of batching and row order, sensitive to any change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from normcore.quality.checksum import MODULUS, arrow_to_pandas, batch_checksums, series_checksum


def _table(rows: int = 600) -> pa.Table:
    rng = np.random.default_rng(2)
    nulls_late = np.zeros(rows, dtype=bool)
    nulls_late[rows // 2 :: 5] = True  # the first half of the rows has no null
    return pa.table(
        {
            "text": pa.array([f"v{i % 37}" for i in range(rows)], mask=rng.random(rows) < 0.1),
            "integer": pa.array(rng.integers(0, 50, rows), mask=nulls_late),
            "flag": pa.array(rng.random(rows) < 0.5, mask=nulls_late),
            "real": pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.1),
            "day": pa.array(rng.integers(0, 20_000, rows).astype("datetime64[D]")),
        }
    )


def _whole(table: pa.Table) -> dict[str, str]:
    frame = arrow_to_pandas(table)
    return {name: series_checksum(frame[name]) for name in table.column_names}


def test_checksum_is_the_sum_of_value_hashes_mod_2_64():
    table = _table()
    frame = arrow_to_pandas(table)
    for name in table.column_names:
        hashes = pd.util.hash_pandas_object(frame[name], index=False)
        assert series_checksum(frame[name]) == str(sum(int(h) for h in hashes) % MODULUS)


@pytest.mark.parametrize("chunk", [1, 7, 300, 600, 1000])
def test_batches_give_the_checksum_of_the_whole(chunk):
    table = _table()
    rows, checksums = batch_checksums(table.to_batches(max_chunksize=chunk), table.column_names)
    assert rows == table.num_rows
    assert checksums == _whole(table)


def test_plain_to_pandas_would_not_be_batch_independent():
    # Why arrow_to_pandas maps types: pandas turns an integer batch with nulls into float64.
    table = _table()
    first, second = table.slice(0, 300), table.slice(300)
    plain = [series_checksum(part.column("integer").to_pandas()) for part in (first, second)]
    whole = series_checksum(table.column("integer").to_pandas())
    assert str(sum(int(v) for v in plain) % MODULUS) != whole


def test_row_order_does_not_matter_but_any_change_does():
    table = _table()
    reference = _whole(table)
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    assert _whole(shuffled) == reference
    dropped = _whole(table.slice(1))
    altered = table.set_column(1, "integer", pa.array([9999] + table.column("integer").to_pylist()[1:]))
    for name in table.column_names:
        assert dropped[name] != reference[name], name
    assert _whole(altered)["integer"] != reference["integer"]
    assert {k: v for k, v in _whole(altered).items() if k != "integer"} == {
        k: v for k, v in reference.items() if k != "integer"
    }
