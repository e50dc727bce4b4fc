"""Order-independent per-column checksums: pass-through columns must come out unchanged.

A column's checksum is the sum, modulo 2**64, of a 64-bit hash of each of its
values (nulls included). Summing makes it independent of row order and of how the
rows are split into files or batches, which engines are free to change; it detects
any altered, added or dropped value, but not values permuted between rows.

Each engine hashes with its own function, so a checksum is compared only with one
computed by the same engine:

* pandas (local engine, and the Beam / streaming path through Arrow): pandas'
  ``hash_pandas_object`` of the column as :func:`arrow_to_pandas` converts it. The
  conversion gives each Arrow type one pandas dtype whatever the batch (integers
  and booleans become nullable extension dtypes), so the checksum of a table equals
  the sum of its batches' checksums.
* Spark: ``xxhash64`` of each value, summed as a decimal (no overflow), mod 2**64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

#: Checksums are sums modulo this.
MODULUS = 2**64

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
    ...) whether or not a batch holds nulls; floats stay ``float64`` with nulls as
    NaN; strings become ``object``.
    """
    return data.to_pandas(types_mapper=_STABLE_DTYPES.get)


def series_checksum(column: pd.Series) -> str:
    """The pandas checksum of one column, as a decimal string."""
    hashes = pd.util.hash_pandas_object(column, index=False).to_numpy()
    return str(int(hashes.sum(dtype=np.uint64)))


def combine_checksums(checksums: Iterable[str]) -> str:
    """The checksum of the union of rows whose checksums are given."""
    return str(sum(int(value) for value in checksums) % MODULUS)


def batch_checksums(batches: Iterable[pa.RecordBatch], columns: Sequence[str]) -> tuple[int, dict[str, str]]:
    """Row count and pandas checksum of each of ``columns`` over a stream of batches."""
    rows = 0
    partial: dict[str, list[str]] = {name: [] for name in columns}
    for batch in batches:
        rows += batch.num_rows
        frame = arrow_to_pandas(batch.select(list(columns)))
        for name in columns:
            partial[name].append(series_checksum(frame[name]))
    return rows, {name: combine_checksums(values) for name, values in partial.items()}


def spark_checksum(column: Any) -> Any:
    """A Spark aggregate ``Column``: the Spark checksum of ``column`` (a name or a
    ``Column``) as a decimal string."""
    from pyspark.sql import functions as F

    decimal = "decimal(38,0)"
    total = F.sum(F.xxhash64(column).cast(decimal))
    return F.pmod(F.coalesce(total, F.lit(0).cast(decimal)), F.lit(str(MODULUS)).cast(decimal)).cast("string")
