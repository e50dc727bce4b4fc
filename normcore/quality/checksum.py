"""Order-independent per-column checksums: pass-through columns must come out unchanged.

A column's checksum is the sum, modulo 2**64, of a 64-bit hash of each of its
values. Summing makes it independent of row order and of how the rows are split
into files or batches, which engines are free to change; it detects any altered,
added or dropped value, but not values permuted between rows.

Each engine hashes with its own function, and a checksum is compared only with one
computed by the same engine:

* Arrow (local engine, pandas, Beam): :func:`array_checksum`, vectorized NumPy.
  Values are first put in a canonical form so that a column hashes alike however
  it travelled (Arrow batches, a pandas DataFrame, back to Arrow): integers,
  booleans, dates and times as int64 (times in microseconds), floats and decimals
  as float64 with ``-0.0`` as ``0.0``, strings and binaries as their bytes; a null
  and a float NaN are both *missing* and hash alike (pandas cannot tell them
  apart). A number is its 64 bits; a byte string of length ``n`` is the
  polynomial ``sum((b_j + 1) * P**(n - 1 - j))`` (``P`` the odd FNV prime) xor
  ``n`` times the golden ratio, mod 2**64. Each word is then mixed with splitmix64
  (golden-ratio increment, then its finalizer). Other types hash their text form.
* Spark: ``xxhash64`` of each value (Spark's hash), summed as a decimal (no
  overflow), mod 2**64 (``pipelines.spark.checksum``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Checksums are sums modulo this.
MODULUS = 2**64

#: Hash of a missing value (null or NaN).
_MISSING = np.uint64(0x6A09E667F3BCC909)
#: Added to each word before mixing, so that 0 (the finalizer's fixed point) hashes to non-zero.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_STABLE_DTYPES = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def arrow_to_pandas(data: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """Convert Arrow data to pandas with one dtype per Arrow type.

    Integers and booleans become pandas' nullable dtypes (``Int64``, ``boolean``,
    ...) whether or not a batch holds nulls, so that they come back to Arrow with
    their type; floats stay ``float64`` with nulls as NaN; strings become ``object``.
    """
    return data.to_pandas(types_mapper=_STABLE_DTYPES.get)


#: Odd multiplier of the polynomial string hash, and its inverse modulo 2**64.
_BASE = 0x100000001B3
_BASE_INVERSE = pow(_BASE, -1, MODULUS)
#: Bytes per block of the string hash (bounds its temporary arrays to ~40 MiB).
_BLOCK = 1 << 20


def _mix(words: np.ndarray) -> np.ndarray:
    """splitmix64 of each uint64: the golden-ratio increment, then its finalizer (every
    input bit affects every output bit; 0 does not map to 0). Arithmetic wraps mod 2**64."""
    words = words + _GOLDEN
    words ^= words >> np.uint64(30)
    words *= np.uint64(0xBF58476D1CE4E5B9)
    words ^= words >> np.uint64(27)
    words *= np.uint64(0x94D049BB133111EB)
    words ^= words >> np.uint64(31)
    return words


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, count: int) -> np.ndarray:
    """``base**0 .. base**(count - 1)`` modulo 2**64 (a view of a cached table)."""
    table = _POWERS.get(base)
    if table is None or table.size < count:
        factors = np.full(max(count, _BLOCK + 1), base, dtype=np.uint64)
        factors[0] = 1
        table = _POWERS[base] = np.cumprod(factors, dtype=np.uint64)
    return table[:count]


def _string_words(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """One uint64 per string: ``sum((b_j + 1) * BASE**(n - 1 - j)) xor n * GOLDEN`` over its
    ``n`` bytes ``b_j``, mod 2**64, vectorized in blocks of about :data:`_BLOCK` bytes.

    Within a block, ``sum_j v_j BASE**(e-1-j) = BASE**(e-1) * sum_j v_j BASE**-j``, so the
    sums come from one prefix sum of ``v_j * BASE**-j``.
    """
    count = offsets.size - 1
    words = np.empty(count, dtype=np.uint64)
    first = 0
    while first < count:
        origin = int(offsets[first])
        last = int(np.searchsorted(offsets, origin + _BLOCK, side="right")) - 1
        last = min(max(last, first + 1), count)
        begins = offsets[first:last] - origin
        ends = offsets[first + 1 : last + 1] - origin
        size = int(ends[-1])
        weighted = data[origin : origin + size].astype(np.uint64)
        weighted += np.uint64(1)
        weighted *= _powers(_BASE_INVERSE, size)
        prefix = np.empty(size + 1, dtype=np.uint64)  # prefix[k]: weighted bytes 0..k-1
        prefix[0] = 0
        np.cumsum(weighted, out=prefix[1:])
        sums = _powers(_BASE, size + 1)[np.maximum(ends - 1, 0)] * (prefix[ends] - prefix[begins])
        words[first:last] = sums ^ ((ends - begins).astype(np.uint64) * _GOLDEN)
        first = last
    return words


def _total(words: np.ndarray, present: np.ndarray) -> int:
    hashes = _mix(words[present])
    missing = int(present.size - np.count_nonzero(present))
    return (int(hashes.sum(dtype=np.uint64)) + missing * int(_MISSING)) % MODULUS


def _words(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Canonical 64-bit words and the presence mask of a numeric / temporal array."""
    kind = array.type
    present = array.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(array, pa.float64(), safe=False).fill_null(0.0).to_numpy(zero_copy_only=False)
        present &= ~np.isnan(values)
        return (values + 0.0).view(np.uint64), present
    if pa.types.is_timestamp(kind):
        array = pc.cast(array, pa.timestamp("us", kind.tz), safe=False)
    elif pa.types.is_time(kind):
        array = pc.cast(array, pa.time64("us"), safe=False)
    elif pa.types.is_duration(kind):
        array = pc.cast(array, pa.duration("us"), safe=False)
    elif pa.types.is_date64(kind):
        array = pc.cast(array, pa.date32())
    if pa.types.is_temporal(array.type):
        array = array.view(pa.int32() if array.type.bit_width == 32 else pa.int64())
    values = pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
    return values.view(np.uint64), present


def _binary_total(array: pa.Array) -> int:
    array = pc.cast(array, pa.large_binary())
    present = array.is_valid().to_numpy(zero_copy_only=False)
    _, offsets, data = array.buffers()
    starts = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    content = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return _total(_string_words(starts, content), present)


def array_checksum(array: pa.Array | pa.ChunkedArray) -> int:
    """The Arrow checksum of one column (see the module notes), an int in ``[0, 2**64)``."""
    if isinstance(array, pa.ChunkedArray):
        return sum(array_checksum(chunk) for chunk in array.chunks) % MODULUS
    kind = array.type
    if pa.types.is_dictionary(kind):
        return array_checksum(array.dictionary_decode())
    if pa.types.is_null(kind):
        return int(_MISSING) * len(array) % MODULUS
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        return _binary_total(array)
    if pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return _binary_total(array)
    if pa.types.is_interval(kind):
        pass
    elif (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_temporal(kind)
    ):
        return _total(*_words(array))
    text = pa.array([None if value is None else repr(value) for value in array.to_pylist()], pa.large_string())
    return _binary_total(text)


def series_checksum(column: pd.Series) -> str:
    """The checksum of a pandas column made by :func:`arrow_to_pandas`, as a decimal string."""
    return str(array_checksum(pa.Array.from_pandas(column)))


def combine_checksums(checksums: Iterable[int | str]) -> str:
    """The checksum of the union of rows whose checksums are given, as a decimal string."""
    return str(sum(int(value) for value in checksums) % MODULUS)


def batch_checksums(batches: Iterable[pa.RecordBatch], columns: Sequence[str]) -> tuple[int, dict[str, str]]:
    """Row count and checksum (decimal string) of each of ``columns`` over a stream of batches."""
    rows = 0
    totals = dict.fromkeys(columns, 0)
    for batch in batches:
        rows += batch.num_rows
        for name in columns:
            totals[name] = (totals[name] + array_checksum(batch.column(name))) % MODULUS
    return rows, {name: str(total) for name, total in totals.items()}
