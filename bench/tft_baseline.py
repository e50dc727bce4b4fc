"""Baselines for bench/bench_beam.py, run with the optional ``.venv-tft`` interpreter.

    .venv-tft/bin/python bench/tft_baseline.py tft DATA_DIR OUT_DIR
    .venv-tft/bin/python bench/tft_baseline.py mltransform DATA_DIR OUT_DIR [--rows N]

``tft``: TensorFlow Transform's ``AnalyzeAndTransformDataset`` with
``tft.scale_to_z_score`` on every float64 column (float32 out: tft's output feature
specs allow no float64) and the string ``id`` passed through,
on its fastest input path: Arrow record batches from ``ReadFromParquetBatched`` with a
``TensorAdapterConfig`` (dense tensors need one-level list columns, so each column is
wrapped zero-copy in a list array of length-1 lists) and ``output_record_batches=True``.

``mltransform``: Beam's ``MLTransform`` with ``ScaleToZScore``, the path a Beam user
gets: one dict per row from ``ReadFromParquet``; ``--rows`` reads only the first N rows
(it runs at a few thousand rows per second).

Both fit, transform and write Parquet on the in-process runner (FnApiRunner, what Beam's
DirectRunner uses for batch) and print one JSON line ``{"baseline", "rows",
"pipeline_seconds"}``. MLTransform's process segfaults at interpreter exit, so the
script flushes its output and ends with ``os._exit``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.runners.portability.fn_api_runner import FnApiRunner


def feature_names(data_dir: str) -> list[str]:
    schema = pq.read_schema(sorted(glob.glob(os.path.join(data_dir, "*.parquet")))[0])
    return [f.name for f in schema if pa.types.is_floating(f.type)]


class WriteParts(beam.DoFn):
    """Writes each table to its own Parquet file (schemas come out of the transform)."""

    def __init__(self, out_dir: str) -> None:
        self._out_dir = out_dir

    def process(self, table: pa.Table):
        pq.write_table(table, os.path.join(self._out_dir, f"part-{uuid.uuid4().hex}.parquet"))
        yield table.num_rows


def run_tft(data_dir: str, out_dir: str) -> int:
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx_bsl.public import tfxio

    features = feature_names(data_dir)
    names = [*features, "id"]

    def as_lists(table: pa.Table):
        for batch in table.to_batches():
            offsets = pa.array(np.arange(batch.num_rows + 1, dtype=np.int32))
            yield pa.RecordBatch.from_arrays(
                [pa.ListArray.from_arrays(offsets, batch.column(name)) for name in names], names
            )

    schema = pa.schema(
        [pa.field(n, pa.list_(pa.float64())) for n in features] + [pa.field("id", pa.list_(pa.string()))]
    )
    representations = {
        n: schema_pb2.TensorRepresentation(
            dense_tensor=schema_pb2.TensorRepresentation.DenseTensor(column_name=n, shape=schema_pb2.FixedShape())
        )
        for n in names
    }

    def preprocessing_fn(inputs):
        # Statistics in float64; tft's output feature specs allow float32 only.
        outputs = {n: tft.scale_to_z_score(inputs[n], output_dtype=tf.float32) for n in features}
        outputs["id"] = inputs["id"]
        return outputs

    pattern = os.path.join(data_dir, "*.parquet")
    with beam.Pipeline(runner=FnApiRunner()) as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        batches = (
            pipeline
            | "Read" >> beam.io.ReadFromParquetBatched(pattern, columns=names)
            | "AsLists" >> beam.FlatMap(as_lists)
        )
        (transformed, _), _ = (
            batches,
            tfxio.TensorAdapterConfig(schema, representations),
        ) | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(preprocessing_fn, output_record_batches=True)
        _ = (
            transformed
            | "ToTable" >> beam.Map(lambda pair: pa.Table.from_batches([pair[0]]))
            | "Write" >> beam.ParDo(WriteParts(out_dir))
        )
    return sum(pq.ParquetFile(p).metadata.num_rows for p in glob.glob(os.path.join(out_dir, "*.parquet")))


def run_mltransform(data_dir: str, out_dir: str, rows: int) -> int:
    from apache_beam.ml.transforms.base import MLTransform
    from apache_beam.ml.transforms.tft import ScaleToZScore

    features = feature_names(data_dir)
    first = sorted(glob.glob(os.path.join(data_dir, "*.parquet")))[0]
    subset = os.path.join(tempfile.mkdtemp(), "subset.parquet")
    pq.write_table(pq.read_table(first).slice(0, rows), subset)

    def to_dict(row) -> dict:
        values = row._asdict()
        return {k: (float(np.asarray(v).reshape(-1)[0]) if k in features else v) for k, v in values.items()}

    schema = pa.schema([pa.field("id", pa.string())] + [pa.field(n, pa.float64()) for n in features])
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromParquet(subset)
            | "MLTransform" >> MLTransform(write_artifact_location=tempfile.mkdtemp()).with_transform(
                ScaleToZScore(columns=features)
            )
            | "ToDict" >> beam.Map(to_dict)
            | "Write" >> beam.io.WriteToParquet(os.path.join(out_dir, "part"), schema, file_name_suffix=".parquet")
        )
    return sum(pq.ParquetFile(p).metadata.num_rows for p in glob.glob(os.path.join(out_dir, "*.parquet")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", choices=["tft", "mltransform"])
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=200_000, help="mltransform: rows of the first file to use")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    start = time.perf_counter()
    if args.baseline == "tft":
        rows = run_tft(args.data_dir, args.out_dir)
    else:
        rows = run_mltransform(args.data_dir, args.out_dir, args.rows)
    seconds = time.perf_counter() - start
    print(json.dumps({"baseline": args.baseline, "rows": rows, "pipeline_seconds": seconds}), flush=True)
    sys.stderr.flush()
    os._exit(0)  # MLTransform (TensorFlow) segfaults at interpreter exit


if __name__ == "__main__":
    main()
