"""What a normalized output must satisfy, derived from the artifact: the check plan.

This module decides *what* is expected and with which tolerance; it imports no
Great Expectations. :mod:`normcore.quality.expectations` turns each :class:`Check`
into the Great Expectations expectation it names, and the conformity combiner
uses :func:`expected_ranges`.

Design
------
The artifact's statistics describe the *input* the transforms were fitted on. What
an output must look like follows from pushing those statistics through the fitted
transform, which is monotone non-decreasing for every method:

* **Range** (``expect_column_values_to_be_between``, ``mostly`` from the config):
  each method's :meth:`~normcore.transforms.Method.output_range`. Methods with a
  documented output range use it: ``minmax`` its ``feature_range``, ``decimal`` and
  ``maxabs`` ``[-1, 1]``, ``quantile`` ``[0, 1]`` (``normal`` output: scikit-learn's
  clip bounds). The others use the fitted range ``[min, max]`` (of the space the
  method fits in) mapped through the transform. On the data the artifact was fitted on, every value conforms, so
  the share of values in range (the *input range conformity*) measures how much of
  new data lies inside what the fit saw. Bounds are widened by ``1e-9`` relative,
  for rounding.
* **Not null** (``expect_column_values_to_not_be_null``) where the fitted input had
  no null, NaN or inf (the validators present all three as missing; pandas cannot
  tell null from NaN).
* **Moments** of standardized features (``zscore``; ``log`` and ``power`` with
  ``standardize``: :meth:`~normcore.transforms.Method.standardized`), with
  ``expect_column_mean_to_be_between`` and ``expect_column_stdev_to_be_between``. The
  expected mean is the linear part applied to the fitted mean (0 when centred); the
  expected standard deviation is what Great Expectations computes, a *sample* one (ddof 1): ``sqrt(var * N / (N - 1)) /
  scale`` with ``var`` the fitted population variance over ``N`` values, so exactly
  1 for ``ddof: 1`` and ``sqrt(N / (N - 1))`` for ``ddof: 0``. On the fitted data
  both hold to rounding; new data of ``n`` values from the same distribution
  differs by sampling error, so the tolerance is ``z`` standard errors of the
  difference between two samples of ``n`` and ``N`` values: ``z * sd * sqrt(1/n +
  1/N)`` for the mean and ``z * sd * sqrt(1/(2(n-1)) + 1/(2(N-1)))`` for the
  standard deviation (normal-theory; heavy tails need a larger ``z``).
* **Quantiles** of ``robust`` and ``quantile`` features (``checks_quantiles``)
  (``expect_column_quantile_values_to_be_between``). The tolerance is set in rank:
  quantile ``q`` of the output must lie between the transformed fitted quantiles
  at ranks ``q - d`` and ``q + d``, with ``d = rank_error + z * sqrt(q (1 - q)
  (1/n + 1/N)) + 1/n`` (sketch error, sampling error, and the interpolation of the
  engines' order statistics). The fitted quantiles come from the artifact's KLL
  sketch.
* **Nothing lost** (``expect_table_row_count_to_equal``): the row count of the
  source data when given, else the artifact's ``rows``.
* **Pass-through columns unchanged**: every column of the source that is not a
  feature exists (``expect_column_to_exist``) and has the source's checksum
  (``expect_column_checksum_to_equal``, see :mod:`normcore.quality.checksum`).
  Without a source only the row count is checked.

Keyed artifacts: ranges are the union over the global and per-key transforms;
moments and quantiles of a mixture of keys are not derivable from the artifact and
are not checked (the plan says so in its notes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normcore.artifact import Artifact
from normcore.config import ValidationConfig
from normcore.errors import ArtifactError
from normcore.io import InputSource
from normcore.stats import QuantileSketch
from normcore.text import number

#: Relative widening of every expected bound, for floating-point rounding.
ROUNDING = 1e-9

@dataclass(frozen=True)
class Evidence:
    """What one streaming pass over every row established, for the row-level checks.

    Attributes
    ----------
    rows : int
        Rows seen.
    conformity : ConformityAccumulator
        Per feature: values, values in range, missing values.
    checksums : mapping of str to str
        Checksum of each pass-through column present.
    columns : frozenset of str
        Columns of the validated data.
    """

    rows: int
    conformity: Any
    checksums: Mapping[str, str]
    columns: frozenset[str]


class CheckKind:
    """One kind of check: its Great Expectations expectation, how the streaming pass evaluates
    it (row-level kinds), and how a failure reads. The registry is :data:`CHECK_KINDS`."""

    #: Great Expectations class name, e.g. ``"ExpectColumnValuesToBeBetween"``.
    expectation: str
    #: Holds row by row (always evaluated on every row); aggregates may use a sample.
    row_level: bool = True

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        """``(success, result in Great Expectations' layout)`` from the streaming pass."""
        raise NotImplementedError(f"{self.expectation} is evaluated by Great Expectations only")

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        """What was observed, for a failed check."""
        return "failed"


class RowCount(CheckKind):
    """Nothing lost: the output has the source's (or the fit's) row count."""

    expectation = "ExpectTableRowCountToEqual"

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        return evidence.rows == check.kwargs["value"], {"observed_value": evidence.rows}

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        return f"{result.get('observed_value')} rows, expected {check.kwargs['value']}"


def range_counts(result: Mapping[str, Any]) -> tuple[int, int]:
    """``(non-missing values, values in range)`` of a range check's result."""
    if "element_count" not in result:
        return 0, 0
    present = int(result["element_count"]) - int(result.get("missing_count") or 0)
    return present, present - int(result.get("unexpected_count") or 0)


class ValuesInRange(CheckKind):
    """Range conformity: at least ``mostly`` of the non-missing values in the expected range."""

    expectation = "ExpectColumnValuesToBeBetween"

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        feature = evidence.conformity.columns[check.column]
        rows, missing, unexpected = evidence.rows, feature.missing, feature.values - feature.in_range
        share = feature.in_range / feature.values if feature.values else 1.0
        present = rows - missing
        return share >= check.kwargs["mostly"], {
            "element_count": rows,
            "missing_count": missing,
            "missing_percent": 100.0 * missing / rows if rows else None,
            "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / present if present else None,
            "unexpected_percent_total": 100.0 * unexpected / rows if rows else None,
            "unexpected_percent_nonmissing": 100.0 * unexpected / present if present else None,
            "partial_unexpected_list": [],
        }

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        values, in_range = range_counts(result)
        share = 100.0 * in_range / values if values else 100.0
        low, high = number(check.kwargs["min_value"]), number(check.kwargs["max_value"])
        return f"{share:.2f}% of {values} values in [{low}, {high}], {values - in_range} outside; " + (
            f"mostly {check.kwargs['mostly']:g}"
        )


class NotNull(CheckKind):
    """No null, NaN or inf value where the fitted input had none."""

    expectation = "ExpectColumnValuesToNotBeNull"

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        missing = evidence.conformity.columns[check.column].missing
        rows = evidence.rows
        return missing == 0, {
            "element_count": rows,
            "unexpected_count": missing,
            "unexpected_percent": 100.0 * missing / rows if rows else 0.0,
            "partial_unexpected_list": [],
        }

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        return f"{result.get('unexpected_count')} null, NaN or inf values"


class Between(CheckKind):
    """An aggregate (mean, standard deviation) between two bounds."""

    row_level = False

    def __init__(self, expectation: str) -> None:
        self.expectation = expectation

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        observed = result.get("observed_value")
        low, high = number(check.kwargs["min_value"]), number(check.kwargs["max_value"])
        return f"observed {'a non-finite value' if observed is None else number(observed)}, expected [{low}, {high}]"


class QuantilesBetween(CheckKind):
    """Quantiles of the output between the transformed fitted quantiles."""

    expectation = "ExpectColumnQuantileValuesToBeBetween"
    row_level = False

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        observed = (result.get("observed_value") or {}).get("values") or []
        ranges = check.kwargs["quantile_ranges"]
        wrong = [
            f"q{q:g}={number(v)} not in [{number(r[0])}, {number(r[1])}]"
            for q, v, r in zip(ranges["quantiles"], observed, ranges["value_ranges"], strict=False)
            if v is None or not r[0] <= v <= r[1]
        ]
        return "; ".join(wrong) or "quantiles out of range"


class ColumnExists(CheckKind):
    """A pass-through column of the source is in the output."""

    expectation = "ExpectColumnToExist"

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        return check.column in evidence.columns, {}

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        return "column missing from the output"


class ChecksumEquals(CheckKind):
    """A pass-through column holds the source column's values (order-independent checksum)."""

    expectation = "ExpectColumnChecksumToEqual"

    def stream(self, check: Check, evidence: Evidence) -> tuple[bool, dict[str, Any]]:
        observed = evidence.checksums[check.column]
        return observed == check.kwargs["value"], {"observed_value": observed}

    def detail(self, check: Check, result: Mapping[str, Any]) -> str:
        return "values differ from the source column"


ROW_COUNT, IN_RANGE, NOT_NULL = RowCount(), ValuesInRange(), NotNull()
MEAN, STDEV = Between("ExpectColumnMeanToBeBetween"), Between("ExpectColumnStdevToBeBetween")
QUANTILES, EXISTS, CHECKSUM = QuantilesBetween(), ColumnExists(), ChecksumEquals()

#: Every kind of check, by expectation name.
CHECK_KINDS: dict[str, CheckKind] = {
    kind.expectation: kind for kind in (ROW_COUNT, IN_RANGE, NOT_NULL, MEAN, STDEV, QUANTILES, EXISTS, CHECKSUM)
}


@dataclass(frozen=True)
class Check:
    """One check of a plan, engine-neutral.

    Attributes
    ----------
    kind : CheckKind
        What is checked (and the Great Expectations expectation that checks it).
    column : str or None
        The column (None for table-level checks).
    kwargs : dict
        Keyword arguments of the expectation besides ``column``.
    note : str
        Where the expected values come from, for the report.
    """

    kind: CheckKind
    column: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def expectation(self) -> str:
        """Great Expectations class name of the check."""
        return self.kind.expectation

    @property
    def row_level(self) -> bool:
        """Whether the check holds row by row (see :attr:`CheckKind.row_level`)."""
        return self.kind.row_level

    @property
    def expectation_type(self) -> str:
        """Snake-case name as Great Expectations reports it (``expect_column_...``)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.expectation).lower()


@dataclass(frozen=True)
class CheckPlan:
    """The checks of one validation and notes on what could not be checked.

    ``ranges`` are the bounds each feature is checked against (widened for
    rounding); ``nominal_ranges`` the same before widening, for display.
    """

    checks: tuple[Check, ...]
    ranges: dict[str, tuple[float, float]]
    nominal_ranges: dict[str, tuple[float, float]]
    notes: tuple[str, ...] = ()


def _widen(low: float, high: float) -> tuple[float, float]:
    pad = ROUNDING * max(1.0, abs(low), abs(high))
    return low - pad, high + pad


def _entry_range(artifact: Artifact, name: str, key: str | None) -> tuple[float, float]:
    fitted = artifact.transform(name, key)
    stats = artifact.feature(name, key)["stats"]
    return fitted.method.output_range(fitted.numpy_operands, fitted.params, stats)


def expected_ranges(artifact: Artifact, widen: bool = True) -> dict[str, tuple[float, float]]:
    """Inclusive ``(low, high)`` every normalized value of each feature should lie in.

    See the module notes for the rule per method. For a keyed artifact the range is
    the union over the global and per-key transforms. With ``widen`` (the bounds
    that are checked) both ends move out by ``1e-9`` relative, for rounding.
    """
    ranges = {}
    for name in artifact.feature_names:
        bounds = [_entry_range(artifact, name, key) for key in (None, *artifact.key_values)]
        low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
        ranges[name] = _widen(low, high) if widen else (low, high)
    return ranges


def require_features(artifact: Artifact, source: InputSource, what: str) -> None:
    """Fail unless ``source`` holds every fitted column (``what`` names it: "input", "--source").

    Raises
    ------
    ArtifactError
        Naming the missing columns and the ones ``source`` has.
    """
    missing = [name for name in artifact.feature_names if source.schema.get_field_index(name) < 0]
    if missing:
        raise ArtifactError(
            f"{what} '{source.path}' lacks fitted column(s) {', '.join(missing)}; "
            f"it has: {', '.join(source.schema.names)}"
        )


def _values_checked(rows_checked: int, stats: Mapping[str, Any], fitted_rows: int) -> int:
    """Non-missing values expected among ``rows_checked`` rows (the fit's finite share)."""
    share = stats["count"] / fitted_rows if fitted_rows else 1.0
    return max(2, round(rows_checked * share))


def _moment_checks(name: str, artifact: Artifact, n: int, z: float) -> list[Check]:
    stats = artifact.feature(name)["stats"]
    fitted = artifact.transform(name)
    linear = fitted.method.standardized(fitted.operands, fitted.params)
    count = int(stats["count"])
    if count < 2 or linear is None:
        return []
    shift, scale, offset = linear
    mean = (stats["mean"] - shift) / scale + offset
    population_sd = stats["std"] / scale
    sample_sd = population_sd * math.sqrt(count / (count - 1))
    mean_tolerance = z * population_sd * math.sqrt(1 / n + 1 / count) + ROUNDING * (1 + abs(mean))
    sd_tolerance = z * sample_sd * math.sqrt(1 / (2 * (n - 1)) + 1 / (2 * (count - 1))) + ROUNDING * (1 + sample_sd)
    origin = f"fitted on {count} values; tolerance {z:g} standard errors at {n} values"
    return [
        Check(
            MEAN,
            name,
            {"min_value": mean - mean_tolerance, "max_value": mean + mean_tolerance},
            f"expected mean {mean:.6g} ({origin})",
        ),
        Check(
            STDEV,
            name,
            {"min_value": max(0.0, sample_sd - sd_tolerance), "max_value": sample_sd + sd_tolerance},
            f"expected sample std (ddof 1) {sample_sd:.6g} ({origin})",
        ),
    ]


def _quantile_check(name: str, artifact: Artifact, quantiles: Sequence[float], n: int, z: float) -> list[Check]:
    stats = artifact.feature(name)["stats"]
    fitted = artifact.transform(name)
    if "quantiles" not in stats or not fitted.method.checks_quantiles:
        return []
    sketch = QuantileSketch.from_dict(stats["quantiles"])
    count = int(stats["count"])
    q = np.asarray(quantiles, dtype=np.float64)
    spread = sketch.rank_error + z * np.sqrt(q * (1 - q) * (1 / n + 1 / count)) + 1 / n
    ranks = np.concatenate([np.clip(q - spread, 0, 1), np.clip(q + spread, 0, 1)])
    bounds = fitted.forward(sketch.percentiles(ranks * 100))
    low, high = bounds[: q.size], bounds[q.size :]
    value_ranges = [list(_widen(float(a), float(b))) for a, b in zip(low, high, strict=True)]
    return [
        Check(
            QUANTILES,
            name,
            {"quantile_ranges": {"quantiles": [float(v) for v in q], "value_ranges": value_ranges}},
            f"transformed quantiles of the fitted sketch (rank error {sketch.rank_error:.2g}), "
            f"tolerance {z:g} standard errors at {n} values",
        )
    ]


def build_checks(
    artifact: Artifact,
    settings: ValidationConfig,
    *,
    rows_checked: int,
    expected_rows: int,
    rows_origin: str,
    passthrough: Mapping[str, str] | None,
    output_columns: Sequence[str],
) -> CheckPlan:
    """The checks a normalized output of ``artifact`` must pass.

    Parameters
    ----------
    artifact : Artifact
        The fitted artifact the output was made with.
    settings : ValidationConfig
        ``mostly``, ``z`` and the ``quantiles`` to check.
    rows_checked : int
        Rows the aggregate checks are evaluated on (all rows, or the sample); sets
        the sampling tolerance.
    expected_rows : int
        Rows the output must have.
    rows_origin : str
        Where ``expected_rows`` comes from, for the report.
    passthrough : mapping of str to str, or None
        Pass-through column -> checksum of the source column (same engine), or
        None when no source was given.
    output_columns : sequence of str
        Columns of the data being validated.

    Returns
    -------
    CheckPlan
    """
    ranges = expected_ranges(artifact)
    keyed = artifact.key is not None
    checks = [Check(ROW_COUNT, None, {"value": int(expected_rows)}, f"rows of {rows_origin}")]
    notes = []
    for name in artifact.feature_names:
        entry = artifact.feature(name)
        stats, method = entry["stats"], entry["transform"]["method"]
        low, high = ranges[name]
        checks.append(
            Check(
                IN_RANGE,
                name,
                {"min_value": low, "max_value": high, "mostly": settings.mostly},
                f"{method}: expected range of the normalized values",
            )
        )
        if stats["null_count"] == 0 and stats["nan_count"] == 0 and stats["inf_count"] == 0:
            checks.append(Check(NOT_NULL, name, {}, "the fitted input had no null, NaN or inf"))
        if keyed:
            continue
        n = _values_checked(rows_checked, stats, artifact.rows)
        checks.extend(_moment_checks(name, artifact, n, settings.z))
        checks.extend(_quantile_check(name, artifact, settings.quantiles, n, settings.z))
    if keyed:
        notes.append(f"keyed artifact (key '{artifact.key}'): moments and quantiles of the mix of keys are not checked")
    if passthrough is None:
        notes.append("no --source: pass-through columns are not compared (only the row count)")
    else:
        present = set(output_columns)
        for name, checksum in passthrough.items():
            checks.append(Check(EXISTS, name, {}, "pass-through column of the source"))
            if name in present:
                checks.append(
                    Check(CHECKSUM, name, {"value": checksum}, "checksum of the source column")
                )
    return CheckPlan(tuple(checks), ranges, expected_ranges(artifact, widen=False), tuple(notes))
