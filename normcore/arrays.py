"""Numeric Arrow columns as NumPy float64 and back, through their buffers.

pyarrow's converters (``Array.to_numpy``, ``pa.array``) import pandas on first use,
about half a second of start-up in every process; a numeric column needs no
conversion, only its value buffer and validity bitmap, so the local engine reads and
builds columns here. Nulls are NaN among the NumPy values, and their validity bitmap
goes back onto the Arrow result unchanged.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def float64_values(array: pa.Array) -> np.ndarray:
    """The values of a float64 ``array`` as a read-only, zero-copy ndarray (slots of
    nulls hold whatever the buffer holds: fill or drop the nulls first)."""
    if len(array) == 0:
        return np.empty(0, dtype=np.float64)
    return np.frombuffer(array.buffers()[1], dtype=np.float64, count=len(array), offset=array.offset * 8)


def column_as_float64(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Buffer | None]:
    """``(float64 values with NaN at nulls, validity bitmap or None)`` of a numeric column.

    The bitmap (offset 0, a bit per row, set where the row is not null) is what
    :func:`float64_column` puts back on a result of the same length.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not column.null_count and pa.types.is_float64(column.type):
        return float64_values(column), None
    import pyarrow.compute as pc  # ~30 ms of start-up, paid only where a column needs a cast or has nulls

    if not pa.types.is_float64(column.type):
        column = pc.cast(column, pa.float64(), safe=False)
    validity = None
    if column.null_count:
        validity = pc.is_valid(column).buffers()[1]
        column = pc.fill_null(column, np.nan)
    return float64_values(column), validity


def float64_column(values: np.ndarray, validity: pa.Buffer | None = None) -> pa.Array:
    """A float64 Arrow array over ``values`` (zero-copy when they are contiguous float64),
    null where ``validity`` (from :func:`column_as_float64`) has a clear bit."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    return pa.Array.from_buffers(pa.float64(), len(values), [validity, pa.py_buffer(values)])
