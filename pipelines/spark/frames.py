"""Input files as one Spark DataFrame with the input's unified schema.

:func:`normcore.io.open_input` unifies the schemas of every file (``int32`` + ``int64``
-> ``int64``, ``int64`` + ``double`` -> ``double``, a column missing from a file is
null there), and the local engine reads every file with that schema. Spark's Parquet
reader cannot widen a column on its own (an ``INT64`` file under a ``double`` schema
fails), so files are read in groups of one physical schema, the columns whose type
differs are cast to the unified type, and the groups are unioned by name. A URL only
Spark reaches (``s3a://``, ``hdfs://``) is read by Spark from its path (:func:`open_url`).
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, from_arrow_type, to_arrow_schema

from normcore.errors import InputError
from normcore.io import CSV_SUFFIXES, InputSource
from pipelines.spark.session import short_cause


def open_url(spark: SparkSession, url: str) -> InputSource:
    """An input only Spark's readers reach (``s3a://``, ``hdfs://``, ``abfss://``): its
    schema from Spark, no listed files (a CSV file by its extension, else Parquet).

    Raises
    ------
    InputError
        Spark cannot list or read ``url`` (the message names it).
    """
    fmt = "csv" if url.endswith(CSV_SUFFIXES) else "parquet"
    try:
        frame = _read_url(spark, url, fmt)
        zone = spark.conf.get("spark.sql.session.timeZone")
        schema = to_arrow_schema(frame.schema, timezone=zone)
    except Exception as exc:  # PySpark, py4j and gRPC errors alike: Spark cannot read it
        raise InputError(f"cannot read input '{url}' with Spark: {short_cause(str(exc))}") from None
    return InputSource(url, fmt, (), schema)


def quote(name: str) -> str:
    """``name`` as a Spark column reference (dots and backticks taken literally)."""
    return "`" + name.replace("`", "``") + "`"


def _spark_type(field: pa.Field, source: InputSource):
    try:
        return from_arrow_type(field.type)
    except (PySparkException, TypeError) as exc:
        raise InputError(
            f"input '{source.path}': column '{field.name}' has type {field.type}, which Spark cannot read "
            f"into the unified schema ({exc})"
        ) from None


def _parquet_group(spark: SparkSession, files: list[str], schema: pa.Schema, source: InputSource) -> DataFrame:
    frame = spark.read.parquet(*files)
    columns: list[Column] = []
    for field in source.schema:
        index = schema.get_field_index(field.name)
        if index < 0:
            columns.append(_null_column(field, source))
        elif schema.field(index).type == field.type:
            columns.append(frame[quote(field.name)])
        else:
            columns.append(frame[quote(field.name)].cast(_spark_type(field, source)).alias(field.name))
    return frame.select(*columns)


def _read_url(spark: SparkSession, url: str, fmt: str) -> DataFrame:
    """``url`` read by Spark: Parquet (a file or a directory of them), or CSV with a header
    line and inferred column types."""
    if fmt == "csv":
        return spark.read.option("header", True).option("inferSchema", True).csv(url)
    return spark.read.option("mergeSchema", True).parquet(url)


def _null_column(field: pa.Field, source: InputSource) -> Column:
    return F.lit(None).cast(_spark_type(field, source)).alias(field.name)


def read_frame(spark: SparkSession, source: InputSource) -> DataFrame:
    """``source`` as a DataFrame whose columns follow ``source.schema`` (names and order);
    a source of no listed files (a URL, :func:`pipelines.spark.engine.open_input`) is read
    from its path by Spark's own reader.

    Raises
    ------
    InputError
        A column cannot be represented in Spark, or a file cannot be read.
    """
    try:
        if not source.files:
            return _read_url(spark, source.path, source.format)
        if source.format == "csv":
            try:
                schema = from_arrow_schema(source.schema)
            except (PySparkException, TypeError) as exc:
                raise InputError(f"input '{source.path}': Spark cannot read its schema ({exc})") from None
            return spark.read.schema(schema).option("header", True).csv(list(source.files))
        groups: dict[pa.Schema, list[str]] = defaultdict(list)
        for path in source.files:
            groups[pq.read_schema(path).remove_metadata()].append(path)
        frames = [_parquet_group(spark, files, schema, source) for schema, files in groups.items()]
    except PySparkException as exc:
        raise InputError(f"cannot read input '{source.path}' with Spark: {str(exc).splitlines()[0]}") from None
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return frame
