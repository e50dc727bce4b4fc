"""Input range conformity inside a Beam pipeline: Beam metrics and a JSON beside the output.

:class:`MeasureConformity` takes the normalized tables of
:class:`~pipelines.beam.transforms.ApplyNormalization` and, in one global combine,
counts per feature the values inside the range ``normcore validate`` expects
(:func:`normcore.quality.checks.expected_ranges`). The counting is
:class:`normcore.quality.conformity.ConformityCombiner`'s; :class:`ConformityCombineFn`
only delegates to it, and accumulators travel as JSON.

Metrics (namespace ``normcore``), set once from the merged counts: per feature
``<feature>.conformity_values`` and ``<feature>.conformity_in_range`` (counters) and
``<feature>.conformity_ppm`` (gauge, parts per million in range); ``conformity_ppm``
over every feature. The report is also written to ``_conformity.json`` inside the
output directory (a leading ``_`` keeps it out of ``pyarrow.dataset`` / Spark reads).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from normcore.artifact import Artifact
from normcore.quality.checks import expected_ranges
from normcore.quality.conformity import ConformityAccumulator, ConformityCombiner
from pipelines.beam.combiners import AccumulatorCoder
from pipelines.beam.transforms import METRICS_NAMESPACE

#: Name of the conformity report written inside the output directory.
CONFORMITY_FILE = "_conformity.json"


class ConformityCombineFn(beam.CombineFn):
    """Normalized tables -> the conformity report of :meth:`ConformityCombiner.extract_output`.

    Every method receives the artifact (a constant or a singleton side input) and
    delegates to a :class:`ConformityCombiner` over its expected ranges, built once
    per artifact.
    """

    def __init__(self) -> None:
        super().__init__()
        self._combiner: ConformityCombiner | None = None
        self._checksum: str | None = None

    def _for(self, artifact: Artifact) -> ConformityCombiner:
        if self._combiner is None or self._checksum != artifact.checksum:
            self._combiner = ConformityCombiner(expected_ranges(artifact))
            self._checksum = artifact.checksum
        return self._combiner

    def create_accumulator(self, artifact: Artifact) -> ConformityAccumulator:
        """Nothing counted yet."""
        return self._for(artifact).create_accumulator()

    def add_input(
        self, mutable_accumulator: ConformityAccumulator, element: pa.Table | pa.RecordBatch, artifact: Artifact
    ) -> ConformityAccumulator:
        """Fold one normalized table or record batch."""
        return self._for(artifact).add_batch(mutable_accumulator, element)

    def merge_accumulators(
        self, accumulators: Iterable[ConformityAccumulator], artifact: Artifact
    ) -> ConformityAccumulator:
        """Merge into the first accumulator."""
        return self._for(artifact).merge_accumulators(accumulators)

    def compact(self, accumulator: ConformityAccumulator, artifact: Artifact) -> ConformityAccumulator:
        """The accumulator as it should travel."""
        return self._for(artifact).compact(accumulator)

    def extract_output(self, accumulator: ConformityAccumulator, artifact: Artifact) -> dict[str, Any]:
        """The report: per feature its range, counts and conformity; the pooled conformity."""
        return self._for(artifact).extract_output(accumulator)

    def get_accumulator_coder(self) -> beam.coders.Coder:
        """JSON coder (no pickle)."""
        return AccumulatorCoder(ConformityAccumulator)


def _ppm(fraction: float | None) -> int:
    return -1 if fraction is None else round(fraction * 1_000_000)


def report_conformity(report: dict[str, Any]) -> dict[str, Any]:
    """Publish a conformity report as Beam metrics; returns it unchanged."""
    for name, feature in report["features"].items():
        Metrics.counter(METRICS_NAMESPACE, f"{name}.conformity_values").inc(feature["values"])
        Metrics.counter(METRICS_NAMESPACE, f"{name}.conformity_in_range").inc(feature["in_range"])
        Metrics.gauge(METRICS_NAMESPACE, f"{name}.conformity_ppm").set(_ppm(feature["conformity"]))
    Metrics.gauge(METRICS_NAMESPACE, "conformity_ppm").set(_ppm(report["conformity"]))
    return report


def write_conformity(report: dict[str, Any], directory: str, artifact: Artifact) -> None:
    """Write ``report`` (with the artifact's checksum) as ``_conformity.json`` in ``directory``."""
    document = {"format": "normcore.conformity", "artifact_checksum": artifact.checksum, **report}
    path = FileSystems.join(directory, CONFORMITY_FILE)
    with FileSystems.create(path, mime_type="application/json") as stream:
        stream.write((json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8"))


class MeasureConformity(beam.PTransform):
    """Normalized tables -> one conformity report (a dict), as metrics and, optionally, a file.

    Parameters
    ----------
    artifact : Artifact or PCollection of one Artifact
        The artifact the tables were normalized with (a constant, or the output of
        :class:`~pipelines.beam.transforms.ComputeStats` in the same pipeline).
    directory : str, optional
        Output directory that receives ``_conformity.json``.
    """

    def __init__(self, artifact: Artifact | beam.PCollection, directory: str | None = None) -> None:
        super().__init__()
        self._artifact = artifact
        self._directory = directory

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        artifact = self._artifact
        if isinstance(artifact, beam.PCollection):
            artifact = beam.pvalue.AsSingleton(artifact)
        report = (
            tables
            | "CountInRange" >> beam.CombineGlobally(ConformityCombineFn(), artifact)
            | "ReportConformity" >> beam.Map(report_conformity)
        )
        if self._directory is not None:
            _ = report | "WriteConformity" >> beam.Map(write_conformity, self._directory, artifact)
        return report
