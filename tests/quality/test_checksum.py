"""Pass-through checksums: a pure-Python reference, batch and row-order independence, pandas round trip."""

from __future__ import annotations

import datetime
import decimal
import struct

import numpy as np
import pyarrow as pa
import pytest

from normcore.quality.checksum import (
    MODULUS,
    array_checksum,
    arrow_to_pandas,
    batch_checksums,
    series_checksum,
)

MASK = MODULUS - 1
MISSING = 0x6A09E667F3BCC909


def _mix(word: int) -> int:
    word = (word + 0x9E3779B97F4A7C15) & MASK
    word ^= word >> 30
    word = (word * 0xBF58476D1CE4E5B9) & MASK
    word ^= word >> 27
    word = (word * 0x94D049BB133111EB) & MASK
    return word ^ (word >> 31)


def _polynomial(data: bytes) -> int:
    state = 0
    for byte in data:  # Horner: sum((b_j + 1) * P**(n - 1 - j))
        state = (state * 0x100000001B3 + byte + 1) & MASK
    return state ^ ((len(data) * 0x9E3779B97F4A7C15) & MASK)


def _reference(values: list, kind: str) -> int:
    """The documented hash in Python integers: numbers as their 64 bits, text as a polynomial."""
    total = 0
    for value in values:
        if value is None or (kind == "float" and value != value):
            total += MISSING
        elif kind == "float":
            total += _mix(struct.unpack("<Q", struct.pack("<d", value + 0.0))[0])
        elif kind == "int":
            total += _mix(value & MASK)
        else:
            total += _mix(_polynomial(value.encode("utf-8")))
    return total % MODULUS


@pytest.mark.parametrize(
    ("values", "arrow_type", "kind"),
    [
        ([1, None, -3, 2**40], pa.int64(), "int"),
        ([7, 0, None], pa.uint8(), "int"),
        ([0, 0], pa.int32(), "int"),
        ([1.5, float("nan"), None, -0.0, 1e300], pa.float64(), "float"),
        (["a", None, "", "héllo", "\x00a", "a\x00"], pa.string(), "text"),
    ],
)
def test_matches_a_pure_python_reference(values, arrow_type, kind):
    assert array_checksum(pa.array(values, arrow_type)) == _reference(values, kind)


@pytest.mark.parametrize("block", [1, 7, 64])
def test_strings_spanning_many_hash_blocks(monkeypatch, block):
    import normcore.quality.checksum as checksum

    monkeypatch.setattr(checksum, "_BLOCK", block)
    rng = np.random.default_rng(block)
    values = ["".join(rng.choice(list("ab\x00z"), size=int(n))) for n in rng.integers(0, 30, 200)]
    values[::17] = [None] * len(values[::17])
    array = pa.array(values)
    assert array_checksum(array) == _reference(values, "text")
    assert array_checksum(array.slice(5, 50)) == _reference(values[5:55], "text")


def test_null_and_nan_hash_alike_and_negative_zero_is_zero():
    assert array_checksum(pa.array([float("nan"), 0.0])) == array_checksum(pa.array([None, -0.0]))


def _table(rows: int = 600) -> pa.Table:
    rng = np.random.default_rng(2)
    nulls_late = np.zeros(rows, dtype=bool)
    nulls_late[rows // 2 :: 5] = True  # the first half of the rows has no null
    days = rng.integers(0, 20_000, rows)
    return pa.table(
        {
            "text": pa.array([f"v{i % 37}" for i in range(rows)], mask=rng.random(rows) < 0.1),
            "integer": pa.array(rng.integers(0, 50, rows), mask=nulls_late),
            "flag": pa.array(rng.random(rows) < 0.5, mask=nulls_late),
            "real": pa.array(rng.normal(size=rows), mask=rng.random(rows) < 0.1),
            "small": pa.array(rng.normal(size=rows).astype(np.float32)),
            "day": pa.array(days.astype("datetime64[D]")),
            "moment": pa.array((days * 86_400_000).astype("datetime64[ms]"), mask=nulls_late),
            "price": pa.array([decimal.Decimal(int(d)) / 100 for d in days], pa.decimal128(10, 2)),
            "clock": pa.array([datetime.time(int(d) % 24, 3) for d in days], pa.time32("s")),
            "label": pa.array([f"k{d % 5}" for d in days]).dictionary_encode(),
            "tags": pa.array([[int(d) % 3] * (int(d) % 3) for d in days]),
        }
    )


def _whole(table: pa.Table) -> dict[str, str]:
    return {name: str(array_checksum(table.column(name))) for name in table.column_names}


@pytest.mark.parametrize("chunk", [1, 7, 300, 600, 1000])
def test_batches_give_the_checksum_of_the_whole(chunk):
    table = _table()
    rows, checksums = batch_checksums(table.to_batches(max_chunksize=chunk), table.column_names)
    assert rows == table.num_rows
    assert checksums == _whole(table)


def test_pandas_round_trip_keeps_every_checksum():
    # Great Expectations computes the checksum on the pandas frame of the output; the
    # source's is computed on Arrow batches. Both must agree for every type.
    table = _table()
    frame = arrow_to_pandas(table)
    assert {name: series_checksum(frame[name]) for name in table.column_names} == _whole(table)


def test_row_order_does_not_matter_but_any_change_does():
    table = _table()
    reference = _whole(table)
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    assert _whole(shuffled) == reference
    dropped = _whole(table.slice(1))
    for name in table.column_names:
        assert dropped[name] != reference[name], name
    values = table.column("integer").to_pylist()
    values[3] = 9999
    altered = _whole(table.set_column(1, "integer", pa.array(values)))
    assert [name for name in reference if altered[name] != reference[name]] == ["integer"]
