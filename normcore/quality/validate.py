"""``normcore validate``: check a normalized output against its artifact.

Two engines evaluate the same :class:`~normcore.quality.checks.CheckPlan` with
Great Expectations:

* **local** (pandas). Up to ``validation.sample_rows`` rows, the output is loaded
  into one pandas DataFrame and Great Expectations evaluates every check on every
  row. Beyond that (data that may not fit in memory, and where Great Expectations'
  pandas engine would cost far more than the fit) the validator is *streaming and
  sampled*: one streaming pass over every row, with memory bounded by the batch
  size, evaluates the row-level checks exactly (row count, range conformity,
  nulls, pass-through checksums) with normcore's combiners, and draws a uniform
  random sample of ``sample_rows`` rows (seeded) on which Great Expectations
  evaluates the aggregate checks (means, standard deviations, quantiles), whose
  tolerances are set for the sample size. Results of both kinds land in one Great
  Expectations validation result; each says what it was evaluated on.
* **spark**: Great Expectations' Spark data source evaluates every check on every
  row of a Spark DataFrame (``pipelines.spark.session.get_session``).

Both engines count non-finite feature values (NaN, +-inf) as missing, as pandas does
NaN: ``apply`` passes them through unchanged, so they are neither in nor out of range.
The pandas frames get NaN in their place, the Spark reader nulls, so verdicts agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from normcore.artifact import Artifact
from normcore.config import SparkConfig, ValidationConfig
from normcore.errors import InputError
from normcore.io import InputSource, open_input
from normcore.paths import Target
from normcore.quality.checks import CheckPlan, build_checks, require_features
from normcore.quality.checksum import array_checksum, arrow_to_pandas, batch_checksums, combine_checksums
from normcore.quality.conformity import ConformityCombiner

#: The validation result's file in a report directory.
REPORT_FILE = "validation_result.json"

ValidationEngine = Literal["local", "spark"]


@dataclass(frozen=True)
class ValidationRequest:
    """What to validate, against what, and how.

    Attributes
    ----------
    artifact : Artifact
    artifact_path : str
    input : str
        The normalized data (Parquet file or directory, or CSV).
    source : str or None
        The data ``input`` was made from; gives the expected row count and the
        pass-through checksums.
    engine : {"local", "spark"}
    settings : ValidationConfig
    spark : SparkConfig
        Master and conf of the Spark engine.
    batch_size : int
        Local engine: rows per Arrow batch of the streaming pass.
    """

    artifact: Artifact
    artifact_path: str
    input: str
    source: str | None
    engine: ValidationEngine
    settings: ValidationConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    batch_size: int = 131_072


@dataclass(frozen=True)
class Failure:
    """A failed expectation: its column (None for the table), type and what was seen."""

    column: str | None
    expectation: str
    detail: str

    def __str__(self) -> str:
        return f"{self.column or '(table)'}: {self.expectation} ({self.detail})"


@dataclass(frozen=True)
class FeatureSummary:
    """One feature's line of the summary."""

    name: str
    method: str
    expected_range: tuple[float, float]
    values: int
    in_range: int
    observed: tuple[float, float] | None
    passed: bool

    @property
    def conformity(self) -> float | None:
        """Share of non-missing values inside the expected range."""
        return self.in_range / self.values if self.values else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "method": self.method,
            "expected_range": list(self.expected_range),
            "values": self.values,
            "in_range": self.in_range,
            "conformity": self.conformity,
            "observed_range": None if self.observed is None else list(self.observed),
            "passed": self.passed,
        }


@dataclass
class ValidationOutcome:
    """The verdict, the per-feature summary and the Great Expectations result."""

    request: ValidationRequest
    plan: CheckPlan
    evaluated_on: str
    features: list[FeatureSummary]
    failures: list[Failure]
    rows: int | None
    expected_rows: int
    rows_origin: str
    passthrough: list[str]
    run: Any
    result: Any = None
    report: dict[str, Path] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """Whether every expectation passed."""
        return not self.failures

    @property
    def values(self) -> int:
        """Non-missing feature values checked for range."""
        return sum(f.values for f in self.features)

    @property
    def conformity(self) -> float | None:
        """Input range conformity: share of every feature's non-missing values in range."""
        values = self.values
        return sum(f.in_range for f in self.features) / values if values else None

    def kpi(self) -> dict[str, Any]:
        """The summary as JSON-safe data (stored in the result's ``meta.normcore``)."""
        return {
            "success": self.success,
            "input_range_conformity": self.conformity,
            "values": self.values,
            "in_range": sum(f.in_range for f in self.features),
            "engine": self.request.engine,
            "evaluated_on": self.evaluated_on,
            "artifact": self.request.artifact_path,
            "artifact_checksum": self.request.artifact.checksum,
            "input": self.request.input,
            "source": self.request.source,
            "rows": self.rows,
            "expected_rows": self.expected_rows,
            "rows_origin": self.rows_origin,
            "passthrough": self.passthrough,
            "features": {f.name: f.to_dict() for f in self.features},
            "failures": [{"column": f.column, "expectation": f.expectation, "detail": f.detail} for f in self.failures],
            "notes": list(self.plan.notes),
        }


def prepare(request: ValidationRequest) -> None:
    """Check everything that can be checked before reading data (exit 2 material).

    Raises
    ------
    NormcoreError
        A missing or unreadable input or source, or a fitted column missing from either.
    """
    output = open_input(request.input)
    require_features(request.artifact, output, "input")
    if request.source is not None:
        require_features(request.artifact, open_source(request.source), "--source")


def open_source(path: str) -> InputSource:
    """:func:`~normcore.io.open_input` for ``--source``, whose errors name the option."""
    try:
        return open_input(path)
    except InputError as exc:
        raise InputError(f"option --source: {exc}") from None


def validate(request: ValidationRequest, report: Target | None = None) -> ValidationOutcome:
    """Validate ``request.input``; write the report into ``report``'s staging when given.

    Parameters
    ----------
    request : ValidationRequest
    report : normcore.paths.Target, optional
        A prepared report directory (:class:`normcore.paths.Writes` commits it).

    Returns
    -------
    ValidationOutcome
        Never raises for non-conforming data: see :attr:`ValidationOutcome.success`.
    """
    prepare(request)
    outcome = _validate_spark(request) if request.engine == "spark" else _validate_local(request)
    outcome.result = outcome.run.suite_result({"normcore": outcome.kpi()})
    if report is not None:
        written = outcome.run.write_report(outcome.result, report.staging)
        outcome.report = {kind: Path(report.path) / path.relative_to(report.staging) for kind, path in written.items()}
    return outcome


def _passthrough(artifact: Artifact, source: InputSource | None) -> list[str]:
    if source is None:
        return []
    features = set(artifact.feature_names)
    return [name for name in source.schema.names if name not in features]


# -- local engine ---------------------------------------------------------------------------------


def _validate_local(request: ValidationRequest) -> ValidationOutcome:
    from normcore.quality.expectations import SuiteRun

    artifact, settings = request.artifact, request.settings
    output = open_input(request.input)
    source = open_source(request.source) if request.source is not None else None
    passthrough = _passthrough(artifact, source)
    if source is not None:
        if passthrough:
            expected_rows, checksums = batch_checksums(source.batches(passthrough, request.batch_size), passthrough)
        else:
            expected_rows, checksums = source.count_rows(), {}
        rows_origin = f"--source '{source.path}'"
    else:
        expected_rows, checksums = artifact.rows, None
        rows_origin = "the artifact (rows read at fit time)"
    rows = output.count_rows()
    whole = rows <= settings.sample_rows
    plan = build_checks(
        artifact,
        settings,
        rows_checked=expected_rows if whole else settings.sample_rows,
        expected_rows=expected_rows,
        rows_origin=rows_origin,
        passthrough=checksums,
        output_columns=output.schema.names,
    )
    present = [name for name in passthrough if output.schema.get_field_index(name) >= 0]
    columns = artifact.feature_names + present
    combiner = ConformityCombiner(plan.ranges)
    if whole:
        table = output.dataset().to_table(columns=columns)
        counts = combiner.add_batch(combiner.create_accumulator(), table)
        evaluated_on = f"every row ({rows}), pandas"
        run = SuiteRun(plan)
        run.evaluate(
            _features_frame(table, artifact.feature_names), "pandas", list(range(len(plan.checks))), evaluated_on
        )
    else:
        counts, observed_checksums, sample = _stream(output, columns, present, combiner, rows, request)
        evaluated_on = (
            f"row-level checks on every row ({rows}, streaming); "
            f"aggregate checks on a uniform sample of {settings.sample_rows} rows, pandas"
        )
        run = SuiteRun(plan)
        _record_row_level(run, plan, counts, observed_checksums, output.schema.names)
        aggregate = [i for i, check in enumerate(plan.checks) if not check.row_level]
        run.evaluate(
            sample, "pandas", aggregate, f"uniform sample of {settings.sample_rows} rows (seed {settings.seed})"
        )
    observed = {name: (c.min, c.max) if c.values else None for name, c in counts.features.items()}
    return _outcome(request, plan, run, evaluated_on, expected_rows, rows_origin, passthrough, observed)


def _stream(
    output: InputSource,
    columns: list[str],
    passthrough: list[str],
    combiner: ConformityCombiner,
    rows: int,
    request: ValidationRequest,
):
    """One pass over every row: conformity counts, checksums, and the uniform sample."""
    settings = request.settings
    rng = np.random.default_rng(settings.seed)
    chosen = np.sort(rng.choice(rows, size=settings.sample_rows, replace=False))
    counts = combiner.create_accumulator()
    partial: dict[str, list[int]] = {name: [] for name in passthrough}
    pieces: list[pa.RecordBatch] = []
    offset = 0
    for batch in output.batches(columns, request.batch_size):
        combiner.add_batch(counts, batch)
        for name in passthrough:
            partial[name].append(array_checksum(batch.column(name)))
        lo, hi = np.searchsorted(chosen, [offset, offset + batch.num_rows])
        if hi > lo:
            pieces.append(batch.select(request.artifact.feature_names).take(pa.array(chosen[lo:hi] - offset)))
        offset += batch.num_rows
    sample = pa.Table.from_batches(pieces) if pieces else None
    frame = _features_frame(sample, request.artifact.feature_names) if sample is not None else None
    return counts, {name: combine_checksums(values) for name, values in partial.items()}, frame


def _record_row_level(run, plan: CheckPlan, counts, checksums: dict[str, str], output_columns: list[str]) -> None:
    """Results of the row-level checks from the streaming pass, in Great Expectations' layout."""
    where = f"every row ({counts.rows}), streaming (normcore combiners)"
    present = set(output_columns)
    for index, check in enumerate(plan.checks):
        if not check.row_level:
            continue
        if check.expectation == "ExpectTableRowCountToEqual":
            run.record(index, counts.rows == check.kwargs["value"], {"observed_value": counts.rows}, where)
        elif check.expectation == "ExpectColumnValuesToBeBetween":
            feature = counts.features[check.column]
            unexpected = feature.values - feature.in_range
            share = feature.in_range / feature.values if feature.values else 1.0
            run.record(
                index, share >= check.kwargs["mostly"], _map_result(counts.rows, feature.missing, unexpected), where
            )
        elif check.expectation == "ExpectColumnValuesToNotBeNull":
            missing = counts.features[check.column].missing
            result = {
                "element_count": counts.rows,
                "unexpected_count": missing,
                "unexpected_percent": 100.0 * missing / counts.rows if counts.rows else 0.0,
                "partial_unexpected_list": [],
            }
            run.record(index, missing == 0, result, where)
        elif check.expectation == "ExpectColumnToExist":
            run.record(index, check.column in present, {}, where)
        elif check.expectation == "ExpectColumnChecksumToEqual":
            observed = checksums[check.column]
            run.record(index, observed == check.kwargs["value"], {"observed_value": observed}, where)
        else:
            raise ValueError(f"no streaming evaluation for {check.expectation}")


def _map_result(rows: int, missing: int, unexpected: int) -> dict[str, Any]:
    present = rows - missing
    return {
        "element_count": rows,
        "missing_count": missing,
        "missing_percent": 100.0 * missing / rows if rows else None,
        "unexpected_count": unexpected,
        "unexpected_percent": 100.0 * unexpected / present if present else None,
        "unexpected_percent_total": 100.0 * unexpected / rows if rows else None,
        "unexpected_percent_nonmissing": 100.0 * unexpected / present if present else None,
        "partial_unexpected_list": [],
    }


# -- spark engine ---------------------------------------------------------------------------------


def _non_finite_as_null(frame: Any, columns: Iterable[str]) -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    kinds = {f.name: f.dataType for f in frame.schema.fields}
    for name in columns:
        if isinstance(kinds[name], (DoubleType, FloatType)):
            non_finite = F.isnan(name) | F.col(name).isin(math.inf, -math.inf)
            frame = frame.withColumn(name, F.when(non_finite, None).otherwise(F.col(name)))
    return frame


def _features_frame(table: pa.Table, features: Iterable[str]) -> Any:
    """``table`` as pandas for Great Expectations, with +-inf in feature columns as NaN."""
    frame = arrow_to_pandas(table)
    for name in features:
        if name in frame.columns and frame[name].dtype.kind == "f":
            frame[name] = frame[name].where(np.isfinite(frame[name]))
    return frame


def _validate_spark(request: ValidationRequest) -> ValidationOutcome:
    from pyspark.sql import functions as F

    from normcore.quality.checksum import spark_checksum
    from normcore.quality.expectations import SuiteRun
    from pipelines.spark.frames import read_frame
    from pipelines.spark.session import get_session

    artifact, settings = request.artifact, request.settings
    spark = get_session(request.spark.master, request.spark.conf, log_level=request.spark.log_level)
    output = open_input(request.input)
    frame = _non_finite_as_null(read_frame(spark, output), artifact.feature_names)
    source = open_source(request.source) if request.source is not None else None
    passthrough = _passthrough(artifact, source)
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
    return _outcome(request, plan, run, evaluated_on, expected_rows, rows_origin, passthrough, observed)


# -- outcome and summary --------------------------------------------------------------------------


def _outcome(
    request: ValidationRequest,
    plan: CheckPlan,
    run: Any,
    evaluated_on: str,
    expected_rows: int,
    rows_origin: str,
    passthrough: list[str],
    observed: dict[str, tuple[float, float] | None],
) -> ValidationOutcome:
    failures = []
    failed_columns = set()
    counts: dict[str, tuple[int, int]] = {}
    rows = None
    for index, check in enumerate(plan.checks):
        result = run.results[index]
        if not result.success:
            failures.append(Failure(check.column, check.expectation_type, _detail(check, result)))
            failed_columns.add(check.column)
        if check.expectation == "ExpectColumnValuesToBeBetween":
            counts[check.column] = _range_counts(result)
        elif check.expectation == "ExpectTableRowCountToEqual":
            rows = (result.result or {}).get("observed_value")
    features = [
        FeatureSummary(
            name,
            request.artifact.feature(name)["transform"]["method"],
            plan.nominal_ranges[name],
            *counts[name],
            observed.get(name),
            name not in failed_columns,
        )
        for name in request.artifact.feature_names
    ]
    return ValidationOutcome(
        request, plan, evaluated_on, features, failures, rows, expected_rows, rows_origin, passthrough, run
    )


def _range_counts(result: Any) -> tuple[int, int]:
    details = result.result or {}
    if "element_count" not in details:
        return 0, 0
    present = int(details["element_count"]) - int(details.get("missing_count") or 0)
    return present, present - int(details.get("unexpected_count") or 0)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    return str(value)


def _detail(check: Any, result: Any) -> str:
    """What was observed, for a failed expectation."""
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = str(result.exception_info.get("exception_message", "")).strip().splitlines()
        return f"raised: {message[0] if message else 'an exception'}"
    details = result.result or {}
    kwargs = check.kwargs
    kind = check.expectation
    if kind == "ExpectColumnValuesToBeBetween":
        values, in_range = _range_counts(result)
        share = 100.0 * in_range / values if values else 100.0
        return (
            f"{share:.2f}% of {values} values in [{_number(kwargs['min_value'])}, {_number(kwargs['max_value'])}], "
            f"{values - in_range} outside; mostly {kwargs['mostly']:g}"
        )
    if kind == "ExpectColumnValuesToNotBeNull":
        return f"{details.get('unexpected_count')} null, NaN or inf values"
    if kind == "ExpectTableRowCountToEqual":
        return f"{details.get('observed_value')} rows, expected {kwargs['value']}"
    if kind in ("ExpectColumnMeanToBeBetween", "ExpectColumnStdevToBeBetween"):
        observed = details.get("observed_value")
        return (
            f"observed {'a non-finite value' if observed is None else _number(observed)}, "
            f"expected [{_number(kwargs['min_value'])}, {_number(kwargs['max_value'])}]"
        )
    if kind == "ExpectColumnQuantileValuesToBeBetween":
        observed = (details.get("observed_value") or {}).get("values") or []
        ranges = kwargs["quantile_ranges"]
        wrong = [
            f"q{q:g}={_number(v)} not in [{_number(r[0])}, {_number(r[1])}]"
            for q, v, r in zip(ranges["quantiles"], observed, ranges["value_ranges"], strict=False)
            if v is None or not r[0] <= v <= r[1]
        ]
        return "; ".join(wrong) or "quantiles out of range"
    if kind == "ExpectColumnToExist":
        return "column missing from the output"
    if kind == "ExpectColumnChecksumToEqual":
        return "values differ from the source column"
    return "failed"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def render_summary(outcome: ValidationOutcome) -> str:
    """The one-screen summary: rows, one line per feature, pass-through, KPI, verdict."""
    request = outcome.request
    lines = [
        f"validate: {request.input} against {request.artifact_path} ({request.engine} engine; {outcome.evaluated_on})",
    ]
    row_check = next(
        outcome.run.results[i]
        for i, c in enumerate(outcome.plan.checks)
        if c.expectation == "ExpectTableRowCountToEqual"
    )
    verdict = "ok" if row_check.success else "FAILED"
    lines.append(f"rows: {outcome.rows} (expected {outcome.expected_rows} from {outcome.rows_origin}): {verdict}")
    header = ("feature", "method", "expected range", "conformity", "observed range", "checks")
    table = [header]
    for feature in outcome.features:
        low, high = feature.expected_range
        observed = (
            "-" if feature.observed is None else f"[{_number(feature.observed[0])}, {_number(feature.observed[1])}]"
        )
        table.append(
            (
                feature.name,
                feature.method,
                f"[{_number(low)}, {_number(high)}]",
                _percent(feature.conformity),
                observed,
                "pass" if feature.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
    if outcome.passthrough:
        failed = sorted({f.column for f in outcome.failures if f.column in outcome.passthrough})
        state = f"changed: {', '.join(failed)}" if failed else "unchanged"
        lines.append(f"pass-through columns ({', '.join(outcome.passthrough)}): {state}")
    lines.extend(f"note: {note}" for note in outcome.plan.notes)
    in_range = sum(f.in_range for f in outcome.features)
    lines.append(f"input range conformity: {_percent(outcome.conformity)} ({in_range} of {outcome.values} values)")
    total = len(outcome.plan.checks)
    if outcome.success:
        lines.append(f"result: PASS ({total} of {total} expectations)")
    else:
        lines.append(f"result: FAIL ({len(outcome.failures)} of {total} expectations failed)")
        lines.extend(f"  {failure}" for failure in outcome.failures)
    if outcome.report:
        lines.append(f"report: {outcome.report['json']} and {outcome.report['data_docs']}")
    return "\n".join(lines)


def failure_message(outcome: ValidationOutcome) -> str:
    """One line naming each failed column and expectation (the exit-1 message)."""
    named = "; ".join(f"{f.column or '(table)'}: {f.expectation}" for f in outcome.failures)
    return f"validation of '{outcome.request.input}' failed: {named}"
