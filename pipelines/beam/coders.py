"""Coders for Arrow elements: IPC streams, and a size estimate that encodes nothing.

Beam estimates the byte size of the first elements of every PCollection (and a sample of
the rest) by encoding them with the PCollection's coder. With the default pickle coder a
table of a million rows is pickled once per step just to be measured; registering
:class:`ArrowBatchCoder` for ``pyarrow.Table`` and ``pyarrow.RecordBatch`` makes that
estimate ``nbytes`` and makes any real transfer an Arrow IPC stream.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

_TABLE, _BATCH = b"T", b"B"


class ArrowBatchCoder(beam.coders.Coder):
    """Encodes a ``pyarrow.Table`` or ``pyarrow.RecordBatch`` as an Arrow IPC stream."""

    def encode(self, value: pa.Table | pa.RecordBatch) -> bytes:
        """One kind byte (table or batch) and the IPC stream."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, value.schema) as writer:
            writer.write(value)
        kind = _TABLE if isinstance(value, pa.Table) else _BATCH
        return kind + sink.getvalue().to_pybytes()

    def decode(self, encoded: bytes) -> pa.Table | pa.RecordBatch:
        """Inverse of :meth:`encode`."""
        table = pa.ipc.open_stream(memoryview(encoded)[1:]).read_all()
        if encoded[:1] == _TABLE:
            return table
        return pa.RecordBatch.from_arrays([column.combine_chunks() for column in table.columns], schema=table.schema)

    def estimate_size(self, value: pa.Table | pa.RecordBatch) -> int:
        """``value.nbytes``: the buffers' size, without encoding."""
        return value.nbytes

    def is_deterministic(self) -> bool:
        """IPC bytes may differ for equal values (chunking, padding)."""
        return False

    def to_type_hint(self) -> type:
        return pa.Table


beam.coders.registry.register_coder(pa.Table, ArrowBatchCoder)
beam.coders.registry.register_coder(pa.RecordBatch, ArrowBatchCoder)
