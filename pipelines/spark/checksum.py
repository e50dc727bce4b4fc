"""The Spark checksum of a column (``xxhash64`` of each value, summed mod 2**64) and its
Great Expectations metric on Spark (see :mod:`normcore.quality.checksum` for the definition
and the Arrow checksum; checksums are compared only within one engine)."""

from __future__ import annotations

from typing import Any

from great_expectations.execution_engine import SparkDFExecutionEngine
from great_expectations.expectations.metrics import ColumnAggregateMetricProvider, column_aggregate_partial
from pyspark.sql import functions as F

from normcore.quality.checksum import MODULUS


def spark_checksum(column: Any) -> Any:
    """A Spark aggregate ``Column``: the Spark checksum of ``column`` (a name or a
    ``Column``) as a decimal string."""
    decimal = "decimal(38,0)"
    total = F.sum(F.xxhash64(column).cast(decimal))
    return F.pmod(F.coalesce(total, F.lit(0).cast(decimal)), F.lit(str(MODULUS)).cast(decimal)).cast("string")


class SparkColumnNormcoreChecksum(ColumnAggregateMetricProvider):
    """``column.normcore_checksum`` on Spark: :func:`spark_checksum` (the pandas form is
    :class:`normcore.quality.expectations.ColumnNormcoreChecksum`)."""

    metric_name = "column.normcore_checksum"
    filter_column_isnull = False

    @column_aggregate_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, **kwargs):
        return spark_checksum(column)
