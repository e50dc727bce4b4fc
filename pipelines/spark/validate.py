"""Validation on Spark: the check plan of :mod:`normcore.quality` evaluated on every row.

Great Expectations' Spark data source evaluates every check of the plan
(:func:`normcore.quality.checks.build_checks`) on a Spark DataFrame of the output; the
pass-through checksums of the source are Spark's own (:mod:`pipelines.spark.checksum`).
Non-finite feature values (NaN, +-inf) become nulls, which Great Expectations counts as
missing, as the local validator counts them: verdicts agree between engines.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType

from normcore.io import open_input
from normcore.quality.checks import build_checks
from normcore.quality.validate import (
    ValidationOutcome,
    ValidationRequest,
    build_outcome,
    open_source,
    passthrough_columns,
)
from pipelines.spark.checksum import spark_checksum
from pipelines.spark.frames import read_frame
from pipelines.spark.session import session_for


def _non_finite_as_null(frame: DataFrame, columns: Iterable[str]) -> DataFrame:
    kinds = {f.name: f.dataType for f in frame.schema.fields}
    for name in columns:
        if isinstance(kinds[name], (DoubleType, FloatType)):
            non_finite = F.isnan(name) | F.col(name).isin(math.inf, -math.inf)
            frame = frame.withColumn(name, F.when(non_finite, None).otherwise(F.col(name)))
    return frame


def validate(request: ValidationRequest) -> ValidationOutcome:
    """Evaluate the check plan of ``request`` with Great Expectations' Spark data source, on
    every row (the Spark engine's ``validate``)."""
    from normcore.quality.expectations import SuiteRun

    artifact, settings = request.artifact, request.settings
    spark = session_for(request.spark)
    output = open_input(request.input)
    frame = _non_finite_as_null(read_frame(spark, output), artifact.feature_names)
    source = open_source(request.source) if request.source is not None else None
    passthrough = passthrough_columns(artifact, source)
    checksums = None
    if source is not None:
        original = read_frame(spark, source)
        kinds = {f.name: f.dataType for f in frame.schema.fields}
        aligned = [F.col(n).cast(kinds[n]).alias(n) if n in kinds else F.col(n) for n in passthrough]
        totals = (
            original.select(*aligned)
            .agg(F.count(F.lit(1)).alias("__rows"), *[spark_checksum(n).alias(n) for n in passthrough])
            .first()
        )
        expected_rows = int(totals["__rows"])
        checksums = {name: totals[name] for name in passthrough}
        rows_origin = f"--source '{source.path}'"
    else:
        expected_rows = artifact.rows
        rows_origin = "the artifact (rows read at fit time)"
    plan = build_checks(
        artifact,
        settings,
        rows_checked=expected_rows,
        expected_rows=expected_rows,
        rows_origin=rows_origin,
        passthrough=checksums,
        output_columns=frame.columns,
    )
    run = SuiteRun(plan)
    evaluated_on = "every row, Spark"
    run.evaluate(frame, "spark", list(range(len(plan.checks))), evaluated_on)
    extremes = frame.agg(
        *[F.min(n).alias(f"min_{i}") for i, n in enumerate(artifact.feature_names)],
        *[F.max(n).alias(f"max_{i}") for i, n in enumerate(artifact.feature_names)],
    ).first()
    observed = {}
    for i, name in enumerate(artifact.feature_names):
        low, high = extremes[f"min_{i}"], extremes[f"max_{i}"]
        observed[name] = None if low is None else (float(low), float(high))
    return build_outcome(request, plan, run, evaluated_on, expected_rows, rows_origin, passthrough, observed)
