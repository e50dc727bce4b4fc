"""``normcore validate``: check a normalized output against its artifact.

Engines evaluate the same :class:`~normcore.quality.checks.CheckPlan` with Great
Expectations; this module holds the request, the outcome and the local engine; the
streaming pass is :mod:`normcore.quality.stream`, the summary :mod:`normcore.quality.render`:

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
* an engine with a ``validate`` of its own (Spark: ``pipelines.spark.validate``, where
  Great Expectations' Spark data source evaluates every check on every row).

Both engines count non-finite feature values (NaN, +-inf) as missing, as pandas does
NaN: ``apply`` passes them through unchanged, so they are neither in nor out of range.
The pandas frames get NaN in their place, the Spark reader nulls, so verdicts agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from normcore.artifact import Artifact
from normcore.config import SparkConfig, ValidationConfig
from normcore.errors import InputError
from normcore.io import InputSource, open_input
from normcore.paths import Target
from normcore.quality.checks import IN_RANGE, ROW_COUNT, Check, CheckPlan, build_checks, range_counts, require_features
from normcore.quality.checksum import batch_checksums, combine_checksums
from normcore.quality.conformity import ConformityCombiner
from normcore.quality.stream import features_frame, record_row_level, stream_rows

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
    workers : int
        Local engine: threads reading the output's (and the source's) Parquet fragments
        in the streaming passes; the outcome is the same for any number.
    """

    artifact: Artifact
    artifact_path: str
    input: str
    source: str | None
    engine: ValidationEngine
    settings: ValidationConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    batch_size: int = 131_072
    workers: int = 1


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
    if request.engine == "local":
        outcome = _validate_local(request)
    else:  # an engine that validates on its own (Spark): its module's ``validate``
        from normcore.engines import get_engine

        outcome = get_engine(request.engine).validate(request)
    outcome.result = outcome.run.suite_result({"normcore": outcome.kpi()})
    if report is not None:
        written = outcome.run.write_report(outcome.result, report.staging)
        outcome.report = {kind: Path(report.path) / path.relative_to(report.staging) for kind, path in written.items()}
    return outcome


def passthrough_columns(artifact: Artifact, source: InputSource | None) -> list[str]:
    """The source's columns that are not features (they must come out unchanged)."""
    if source is None:
        return []
    features = set(artifact.feature_names)
    return [name for name in source.schema.names if name not in features]


# -- local engine ---------------------------------------------------------------------------------


def _source_checksums(
    source: InputSource, passthrough: list[str], request: ValidationRequest
) -> tuple[int, dict[str, str]]:
    """Rows of ``source`` and the checksum of each pass-through column, its fragments read
    on ``request.workers`` threads (checksums are sums: the same for any number)."""
    shares = source.map_fragments(
        lambda batches: batch_checksums(batches, passthrough), passthrough, request.batch_size, request.workers
    )
    rows = sum(share_rows for share_rows, _ in shares)
    return rows, {name: combine_checksums(totals[name] for _, totals in shares) for name in passthrough}


def _validate_local(request: ValidationRequest) -> ValidationOutcome:
    from normcore.quality.expectations import SuiteRun

    artifact, settings = request.artifact, request.settings
    output = open_input(request.input)
    source = open_source(request.source) if request.source is not None else None
    passthrough = passthrough_columns(artifact, source)
    if source is not None:
        if passthrough:
            expected_rows, checksums = _source_checksums(source, passthrough, request)
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
    if whole:
        table = output.dataset().to_table(columns=columns)
        combiner = ConformityCombiner(plan.ranges)
        counts = combiner.add_batch(combiner.create_accumulator(), table)
        evaluated_on = f"every row ({rows}), pandas"
        run = SuiteRun(plan)
        run.evaluate(
            features_frame(table, artifact.feature_names), "pandas", list(range(len(plan.checks))), evaluated_on
        )
    else:
        evidence, sample = stream_rows(output, columns, present, ConformityCombiner(plan.ranges), rows, request)
        counts = evidence.conformity
        evaluated_on = (
            f"row-level checks on every row ({rows}, streaming); "
            f"aggregate checks on a uniform sample of {settings.sample_rows} rows, pandas"
        )
        run = SuiteRun(plan)
        record_row_level(run, plan, evidence)
        aggregate = [i for i, check in enumerate(plan.checks) if not check.row_level]
        run.evaluate(
            sample, "pandas", aggregate, f"uniform sample of {settings.sample_rows} rows (seed {settings.seed})"
        )
    observed = {name: (c.min, c.max) if c.values else None for name, c in counts.columns.items()}
    return build_outcome(request, plan, run, evaluated_on, expected_rows, rows_origin, passthrough, observed)


# -- outcome ----------------------------------------------------------------------------------------


def failure_detail(check: Check, result: Any) -> str:
    """What was observed, for a failed check (or the exception it raised)."""
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = str(result.exception_info.get("exception_message", "")).strip().splitlines()
        return f"raised: {message[0] if message else 'an exception'}"
    return check.kind.detail(check, result.result or {})


def build_outcome(
    request: ValidationRequest,
    plan: CheckPlan,
    run: Any,
    evaluated_on: str,
    expected_rows: int,
    rows_origin: str,
    passthrough: list[str],
    observed: dict[str, tuple[float, float] | None],
) -> ValidationOutcome:
    """The verdict and the per-feature summary of an evaluated plan (every engine ends here)."""
    failures = []
    failed_columns = set()
    counts: dict[str, tuple[int, int]] = {}
    rows = None
    for index, check in enumerate(plan.checks):
        result = run.results[index]
        if not result.success:
            failures.append(Failure(check.column, check.expectation_type, failure_detail(check, result)))
            failed_columns.add(check.column)
        if check.kind is IN_RANGE:
            counts[check.column] = range_counts(result.result or {})
        elif check.kind is ROW_COUNT:
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
