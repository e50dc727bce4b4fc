"""Input files as one Spark DataFrame with the input's unified schema.

:func:`normcore.io.open_input` unifies the schemas of every file (``int32`` + ``int64``
-> ``int64``, ``int64`` + ``double`` -> ``double``, a column missing from a file is
null there), and the local engine reads every file with that schema. Spark's Parquet
reader cannot widen a column on its own (an ``INT64`` file under a ``double`` schema
fails), so files are read in groups of one physical schema, the columns whose type
differs are cast to the unified type, and the groups are unioned by name.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, from_arrow_type

from normcore.errors import InputError
from normcore.io import InputSource


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


def _null_column(field: pa.Field, source: InputSource) -> Column:
    return F.lit(None).cast(_spark_type(field, source)).alias(field.name)


def read_frame(spark: SparkSession, source: InputSource) -> DataFrame:
    """``source`` as a DataFrame whose columns follow ``source.schema`` (names and order).

    Raises
    ------
    InputError
        A column cannot be represented in Spark, or a file cannot be read.
    """
    try:
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
