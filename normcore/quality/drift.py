"""``normcore drift``: new data's statistics against the artifact's.

For every feature of the artifact, one streaming pass over the new (raw) data
gathers the same statistics a fit does (:class:`~normcore.stats.FeatureStatsCombiner`), in
the space the feature's method fits in (the logged values of a ``log`` feature, the
transformed ones of a ``power`` feature), with a KLL sketch of the artifact's ``k`` where the artifact has one), and
:mod:`normcore.stats.compare` measures

* the standardized mean shift ``(mean_new - mean_fit) / std_fit``,
* the variance ratio ``var_new / var_fit`` (both ddof 0),
* the population stability index over ``psi_bins`` equal-mass bins of the fitted
  sketch, for features whose artifact holds a sketch (``fit --sketch``, or the
  ``robust`` / ``quantile`` methods); the others are reported without a PSI.

A feature has drifted when any measure is beyond its threshold (config section
``drift``). The thresholds are absolute, so the false-positive rate falls with the
row counts; BENCHMARKS.md records it on fresh samples of the fitted distribution.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from normcore.artifact import Artifact
from normcore.config import DriftConfig, DriftThresholds
from normcore.errors import ConfigError, InputError
from normcore.io import InputSource, require_rows
from normcore.paths import Target
from normcore.quality.checks import require_features
from normcore.stats import ColumnRequest, FeatureStatsCombiner, QuantileSketch, StatsAccumulator, fold_batches
from normcore.stats.compare import population_stability_index, standardized_mean_shift, variance_ratio
from normcore.text import number

#: The drift report's file in a report directory.
REPORT_FILE = "drift.json"
#: Statistics shown for the fitted and the new data.
_SHOWN = ("count", "null_count", "nan_count", "inf_count", "mean", "std", "min", "max")


@dataclass(frozen=True)
class FeatureDrift:
    """The drift measures of one feature and the thresholds they broke."""

    name: str
    mean_shift: float
    variance_ratio: float
    psi: float | None
    reference: dict[str, Any]
    current: dict[str, Any]
    thresholds: DriftThresholds
    reasons: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        """Whether any threshold was broken."""
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (non-finite measures as the strings ``"inf"`` / ``"-inf"``)."""
        return {
            "mean_shift": _finite_or_text(self.mean_shift),
            "variance_ratio": _finite_or_text(self.variance_ratio),
            "psi": None if self.psi is None else _finite_or_text(self.psi),
            "psi_skipped": None if self.psi is not None else "the artifact has no sketch of this feature",
            "drifted": self.drifted,
            "reasons": list(self.reasons),
            "thresholds": _plain_thresholds(self.thresholds),
            "fitted": {k: _finite_or_text(self.reference.get(k)) for k in _SHOWN},
            "new": {k: _finite_or_text(self.current.get(k)) for k in _SHOWN},
        }


@dataclass(frozen=True)
class DriftOutcome:
    """Drift of every feature of an artifact on one input."""

    input: str
    artifact_path: str
    artifact_checksum: str
    rows: int
    thresholds: DriftConfig
    features: tuple[FeatureDrift, ...]

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted."""
        return [f.name for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "format": "normcore.drift",
            "input": self.input,
            "artifact": self.artifact_path,
            "artifact_checksum": self.artifact_checksum,
            "rows": self.rows,
            "thresholds": {**_plain_thresholds(self.thresholds), "psi_bins": self.thresholds.psi_bins},
            "drifted": self.drifted,
            "features": {f.name: f.to_dict() for f in self.features},
        }


def _finite_or_text(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _plain_thresholds(thresholds: DriftConfig | DriftThresholds) -> dict[str, Any]:
    return {
        "max_mean_shift": thresholds.max_mean_shift,
        "variance_ratio": [_finite_or_text(bound) for bound in thresholds.variance_ratio],
        "max_psi": thresholds.max_psi,
    }


def _reasons(shift: float, ratio: float, psi: float | None, thresholds: DriftThresholds) -> tuple[str, ...]:
    reasons = []
    if not abs(shift) <= thresholds.max_mean_shift:
        reasons.append(f"mean shift {shift:.3g} beyond +-{thresholds.max_mean_shift:g}")
    low, high = thresholds.variance_ratio
    if not low <= ratio <= high:
        reasons.append(f"variance ratio {ratio:.3g} outside [{low:g}, {high:g}]")
    if psi is not None and not psi <= thresholds.max_psi:
        reasons.append(f"PSI {psi:.3g} above {thresholds.max_psi:g}")
    return tuple(reasons)


def measure_drift(
    artifact: Artifact,
    source: InputSource,
    thresholds: DriftConfig,
    artifact_path: str,
    batch_size: int = 131_072,
    workers: int = 1,
) -> DriftOutcome:
    """Compare ``source`` (raw data) with the statistics ``artifact`` was fitted on, reading
    it on ``workers`` threads (the states merge in fragment order: the same outcome for
    any ``workers``).

    Raises
    ------
    ConfigError
        ``drift.features`` names a column that is not a feature.
    ArtifactError
        ``source`` lacks a fitted column.
    InputError
        ``source`` has no rows, or a feature has no finite value.
    """
    unknown = sorted(set(thresholds.features) - set(artifact.feature_names))
    if unknown:
        raise ConfigError(
            f"drift.features: {', '.join(unknown)} not a feature of '{artifact_path}'; "
            f"its features: {', '.join(artifact.feature_names)}"
        )
    require_features(artifact, source, "input")
    references = {name: artifact.feature(name)["stats"] for name in artifact.feature_names}
    sketches = {
        name: QuantileSketch.from_dict(stats["quantiles"]) for name, stats in references.items() if "quantiles" in stats
    }
    # New data is measured in the space each method fits in (log: logged values).
    requests = [
        ColumnRequest(
            name,
            name in sketches,
            sketches[name].k if name in sketches else None,
            artifact.transform(name).fit_space_map,
        )
        for name in artifact.feature_names
    ]
    combiner = FeatureStatsCombiner(requests)

    def fold(batches: Iterable[pa.RecordBatch]) -> StatsAccumulator:
        return fold_batches(FeatureStatsCombiner(requests), batches)[0]

    shares = source.map_fragments(fold, artifact.feature_names, batch_size, workers)
    accumulator = combiner.merge_accumulators([combiner.create_accumulator(), *shares])
    require_rows(accumulator.rows, source.path)
    features = []
    for name, reference in references.items():
        column = accumulator.columns[name]
        current = column.moments.summary()
        if current["count"] == 0:
            m = column.moments
            raise InputError(
                f"column '{name}' of '{source.path}' has no finite value "
                f"({m.null_count} null, {m.nan_count} NaN, {m.inf_count} inf)"
            )
        shift = standardized_mean_shift(reference, current)
        ratio = variance_ratio(reference, current)
        psi = None
        if name in sketches:
            psi = population_stability_index(sketches[name], column.sketch, thresholds.psi_bins)
        own = thresholds.for_feature(name)
        features.append(
            FeatureDrift(name, shift, ratio, psi, reference, current, own, _reasons(shift, ratio, psi, own))
        )
    return DriftOutcome(source.path, artifact_path, artifact.checksum, accumulator.rows, thresholds, tuple(features))


def render_drift(outcome: DriftOutcome) -> str:
    """One screen: a line per feature with its measures and verdict, then the result."""
    lines = [f"drift: {outcome.input} against {outcome.artifact_path} ({outcome.rows} rows)"]
    header = ("feature", "mean shift", "variance ratio", "PSI", "verdict")
    table = [header]
    for feature in outcome.features:
        if feature.drifted:
            verdict = "DRIFT: " + "; ".join(feature.reasons)
        else:
            verdict = "ok" if feature.psi is not None else "ok (no sketch in the artifact: PSI skipped)"
        row = (
            feature.name,
            number(feature.mean_shift, 4),
            number(feature.variance_ratio, 4),
            number(feature.psi, 4),
            verdict,
        )
        table.append(row)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
    t = outcome.thresholds
    low, high = t.variance_ratio
    lines.append(
        f"thresholds: |mean shift| <= {t.max_mean_shift:g}, variance ratio in [{low:g}, {high:g}], "
        f"PSI <= {t.max_psi:g} over {t.psi_bins} bins"
    )
    drifted = outcome.drifted
    lines.append(f"result: DRIFT in {', '.join(drifted)}" if drifted else "result: no drift")
    return "\n".join(lines)


def write_drift_report(outcome: DriftOutcome, report: Target) -> Path:
    """Write ``drift.json`` into a prepared report directory's staging; returns its final path."""
    (report.staging / REPORT_FILE).write_text(json.dumps(outcome.to_dict(), indent=2, allow_nan=False) + "\n")
    return Path(report.path) / REPORT_FILE
