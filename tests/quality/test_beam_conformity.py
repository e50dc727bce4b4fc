"""Conformity inside the Beam pipeline: its JSON agrees with Great Expectations, its metrics with NumPy."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.apply import BatchNormalizer
from normcore.artifact import load_artifact
from normcore.cli import main
from normcore.quality.checks import expected_ranges
from quality.quality_support import quality_table

beam = pytest.importorskip("apache_beam")


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """New data, shifted by half a standard deviation: some normalized values leave the range."""
    root = tmp_path_factory.mktemp("beam_quality")
    pq.write_table(quality_table(2_000, seed=21, shift=0.5), root / "shifted.parquet")
    return root / "shifted.parquet"


def test_beam_conformity_json_agrees_with_great_expectations(fitted, shifted, tmp_path, capsys):
    output = tmp_path / "beam"
    argv = ["apply", str(shifted), "--artifact", str(fitted.artifact), "--output", str(output), "--engine", "beam"]
    assert main(argv) == 0
    conformity = json.loads((output / "_conformity.json").read_text())
    assert conformity["artifact_checksum"] == load_artifact(fitted.artifact).checksum
    report = tmp_path / "report"
    code = main(["validate", str(output), "--artifact", str(fitted.artifact), "--report", str(report)])
    capsys.readouterr()
    assert code == 1  # shifted data leaves the fitted ranges
    result = json.loads((report / "validation_result.json").read_text())
    assert result["meta"]["normcore"]["evaluated_on"].endswith("pandas")  # every row, by Great Expectations
    by_gx = {}
    for entry in result["results"]:
        config = entry["expectation_config"]
        if config["type"] == "expect_column_values_to_be_between":
            details = entry["result"]
            values = details["element_count"] - details["missing_count"]
            by_gx[config["kwargs"]["column"]] = (values, values - details["unexpected_count"], details["missing_count"])
    by_beam = {name: (f["values"], f["in_range"], f["missing"]) for name, f in conformity["features"].items()}
    assert by_beam == by_gx
    assert any(values != inside for values, inside, _ in by_gx.values())
    assert conformity["conformity"] == pytest.approx(result["meta"]["normcore"]["input_range_conformity"], rel=1e-15)


def test_beam_metrics_count_what_numpy_counts(fitted, shifted):
    from apache_beam.metrics.metric import MetricsFilter

    from pipelines.beam.quality import MeasureConformity

    artifact = load_artifact(fitted.artifact)
    table = pq.read_table(shifted)
    normalized = [BatchNormalizer(artifact).transform_batch(b)[0] for b in table.to_batches(max_chunksize=300)]
    pipeline = beam.Pipeline()
    tables = pipeline | beam.Create([pa.Table.from_batches([b]) for b in normalized])
    _ = tables | MeasureConformity(artifact)
    result = pipeline.run()
    result.wait_until_finish()
    metrics = result.metrics().query(MetricsFilter())
    counters = {m.key.metric.name: m.committed for m in metrics["counters"]}
    gauges = {m.key.metric.name: m.committed.value for m in metrics["gauges"]}
    whole = pa.Table.from_batches(normalized)
    for name, (low, high) in expected_ranges(artifact).items():
        values = whole.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        values = values[~np.isnan(values)]
        inside = int(np.count_nonzero((values >= low) & (values <= high)))
        assert counters[f"{name}.conformity_values"] == values.size
        assert counters[f"{name}.conformity_in_range"] == inside
        assert gauges[f"{name}.conformity_ppm"] == round(1_000_000 * inside / values.size)


def test_single_pipeline_run_measures_with_the_artifact_as_side_input(fitted, tmp_path, capsys):
    from pipelines.beam.normalize import run

    output, artifact = tmp_path / "run", tmp_path / "a.json"
    argv = ["run", str(fitted.raw), "--artifact", str(artifact), "--output", str(output)]
    assert run([*argv, "--config", str(fitted.config)]) == 0
    capsys.readouterr()
    conformity = json.loads((output / "_conformity.json").read_text())
    assert conformity["artifact_checksum"] == load_artifact(artifact).checksum
    assert conformity["rows"] == pq.ParquetDataset(fitted.raw).read().num_rows
    assert conformity["conformity"] == 1.0  # the data the artifact was fitted on
