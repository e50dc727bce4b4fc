"""``normcore validate`` on the local engine: valid output, tampered outputs, sampled mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from normcore.quality.checks import expected_ranges
from quality.quality_support import FEATURES, write_config


def _validate(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write(table: pa.Table, directory: Path) -> Path:
    directory.mkdir(parents=True)
    pq.write_table(table, directory / "part-0.parquet")
    return directory


def _conformity_reference(table: pa.Table, artifact_path: Path) -> tuple[int, int]:
    """(in range, non-missing) over every feature, counted with NumPy."""
    from normcore.artifact import load_artifact

    inside = total = 0
    for name, (low, high) in expected_ranges(load_artifact(artifact_path)).items():
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        values = values[~np.isnan(values)]
        total += values.size
        inside += int(np.count_nonzero((values >= low) & (values <= high)))
    return inside, total


def test_valid_output_passes_and_writes_the_report(fitted, tmp_path, capsys):
    report = tmp_path / "report"
    code, out, err = _validate(
        capsys,
        str(fitted.output),
        "--artifact",
        str(fitted.artifact),
        "--source",
        str(fitted.raw),
        "--report",
        str(report),
    )
    assert code == 0, out + err
    assert "result: PASS" in out and "input range conformity: 100.00%" in out
    for feature in FEATURES:
        assert any(line.startswith(feature["name"]) and line.endswith("pass") for line in out.splitlines())
    result = json.loads((report / "validation_result.json").read_text())
    assert result["success"] is True
    kpi = result["meta"]["normcore"]
    inside, total = _conformity_reference(ds.dataset(fitted.output).to_table(), fitted.artifact)
    assert (kpi["in_range"], kpi["values"]) == (inside, total) == (total, total)
    assert kpi["input_range_conformity"] == 1.0
    types = {r["expectation_config"]["type"] for r in result["results"]}
    assert {
        "expect_table_row_count_to_equal",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_mean_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_to_exist",
        "expect_column_checksum_to_equal",
    } <= types
    assert (report / "data_docs" / "index.html").is_file()
    (page,) = (report / "data_docs" / "validations").rglob("*.html")
    assert "values must be those of the source column" in page.read_text()  # the checksum's own renderer


def _push_out_of_range(table: pa.Table) -> pa.Table:
    values = table.column("rate").to_numpy(zero_copy_only=False).copy()
    values[100:130] = 5.0  # minmax to [-1, 2]
    return table.set_column(table.schema.get_field_index("rate"), "rate", pa.array(values))


def _drop_rows(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table.slice(0, 1000), table.slice(1010)])


def _alter_passthrough(table: pa.Table) -> pa.Table:
    category = table.column("category").to_pylist()
    category[7] = "gardening" if category[7] != "gardening" else "garden"
    return table.set_column(table.schema.get_field_index("category"), "category", pa.array(category))


def _inject_infinity(table: pa.Table) -> pa.Table:
    # score had no null, NaN or inf at fit: an infinity in its output is flagged (not as
    # out of range: non-finite values are missing, as apply passes them through).
    values = table.column("score").to_numpy(zero_copy_only=False).copy()
    values[42] = np.inf
    return table.set_column(table.schema.get_field_index("score"), "score", pa.array(values))


TAMPERING: dict[str, tuple[Callable[[pa.Table], pa.Table], str, str]] = {
    "infinity in a column that had none": (_inject_infinity, "score", "expect_column_values_to_not_be_null"),
    "values out of range": (_push_out_of_range, "rate", "expect_column_values_to_be_between"),
    "rows dropped": (_drop_rows, "(table)", "expect_table_row_count_to_equal"),
    "pass-through altered": (_alter_passthrough, "category", "expect_column_checksum_to_equal"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_output_fails_naming_column_and_expectation(fitted, tmp_path, capsys, case):
    tamper, column, expectation = TAMPERING[case]
    tampered = _write(tamper(ds.dataset(fitted.output).to_table()), tmp_path / "tampered")
    code, out, err = _validate(capsys, str(tampered), "--artifact", str(fitted.artifact), "--source", str(fitted.raw))
    assert code == 1, out + err
    assert "result: FAIL" in out
    assert f"  {column}: {expectation} (" in out
    assert err.startswith("check failed: validation of ") and f"{column}: {expectation}" in err
    assert len(err.strip().splitlines()) == 1


def test_out_of_range_share_is_the_kpi(fitted, tmp_path, capsys):
    table = _push_out_of_range(ds.dataset(fitted.output).to_table())
    tampered = _write(table, tmp_path / "tampered")
    report = tmp_path / "report"
    code, out, _ = _validate(capsys, str(tampered), "--artifact", str(fitted.artifact), "--report", str(report))
    assert code == 1
    inside, total = _conformity_reference(table, fitted.artifact)
    assert total - inside == 30
    kpi = json.loads((report / "validation_result.json").read_text())["meta"]["normcore"]
    assert (kpi["in_range"], kpi["values"]) == (inside, total)
    assert f"input range conformity: {100 * inside / total:.2f}% ({inside} of {total} values)" in out
    rate = kpi["features"]["rate"]
    rate_values = pc.drop_null(table.column("rate")).to_numpy()
    present = int(np.count_nonzero(~np.isnan(rate_values)))
    assert (rate["in_range"], rate["values"]) == (present - 30, present)
    assert rate["observed_range"][1] == 5.0
    assert [f["column"] for f in kpi["failures"]] == ["rate"]


def test_without_source_rows_come_from_the_artifact(fitted, tmp_path, capsys):
    code, out, _ = _validate(capsys, str(fitted.output), "--artifact", str(fitted.artifact))
    assert code == 0 and "from the artifact" in out and "note: no --source" in out
    tampered = _write(_drop_rows(ds.dataset(fitted.output).to_table()), tmp_path / "tampered")
    code, out, _ = _validate(capsys, str(tampered), "--artifact", str(fitted.artifact))
    assert code == 1 and "(table): expect_table_row_count_to_equal (2990 rows, expected 3000)" in out


def test_sampled_mode_checks_every_row_for_row_level_expectations(fitted, tmp_path, capsys):
    config = write_config(tmp_path / "job.yaml", validation={"sample_rows": 500, "seed": 3})
    common = ["--artifact", str(fitted.artifact), "--source", str(fitted.raw), "--config", str(config)]
    code, out, err = _validate(capsys, str(fitted.output), *common, "--batch-size", "256")
    assert code == 0, out + err
    assert "uniform sample of 500 rows" in out and "input range conformity: 100.00%" in out
    for tamper, column, expectation in TAMPERING.values():
        target = tmp_path / f"tampered-{column.strip('()')}"
        tampered = _write(tamper(ds.dataset(fitted.output).to_table()), target)
        report = tmp_path / f"report-{column.strip('()')}"
        code, out, _ = _validate(capsys, str(tampered), *common, "--batch-size", "256", "--report", str(report))
        assert code == 1 and f"  {column}: {expectation} (" in out
        results = json.loads((report / "validation_result.json").read_text())["results"]
        failed = {
            (r["expectation_config"]["kwargs"].get("column", "(table)"), r["expectation_config"]["type"])
            for r in results
            if not r["success"]
        }
        assert (column, expectation) in failed
        evaluated = {r["meta"]["evaluated_on"].split(",")[0] for r in results}
        assert evaluated == {
            "every row (3000)" if column != "(table)" else "every row (2990)",
            "uniform sample of 500 rows (seed 3)",
        }


def _split(table: pa.Table, directory: Path, rows_per_file: int) -> Path:
    """``table`` in files of ``rows_per_file`` rows (each file is a fragment of its own)."""
    directory.mkdir(parents=True)
    for index, start in enumerate(range(0, table.num_rows, rows_per_file)):
        pq.write_table(table.slice(start, rows_per_file), directory / f"part-{index:02d}.parquet", row_group_size=200)
    return directory


@pytest.mark.parametrize("case", ["valid", "values out of range", "pass-through altered"])
def test_workers_read_fragments_in_parallel_with_the_same_outcome(fitted, tmp_path, capsys, case):
    """The streaming passes read the output's and the source's fragments on threads: one
    worker and three give the same results, sampled checks included (the same rows are
    drawn), and the streamed counts are NumPy's."""
    table = ds.dataset(fitted.output).to_table()
    if case != "valid":
        table = TAMPERING[case][0](table)
    output = _split(table, tmp_path / "output", 450)
    source = _split(ds.dataset(fitted.raw).to_table(), tmp_path / "source", 700)
    config = write_config(tmp_path / "job.yaml", validation={"sample_rows": 500, "seed": 3})
    outcomes = {}
    for workers in ("1", "3"):
        report = tmp_path / f"report-{workers}"
        code, _, _ = _validate(
            capsys, str(output), "--artifact", str(fitted.artifact), "--source", str(source), "--config", str(config),
            "--batch-size", "128", "--workers", workers, "--report", str(report),
        )  # fmt: skip
        document = json.loads((report / "validation_result.json").read_text())
        results = [
            (r["expectation_config"], r["success"], r["result"], r["meta"]["evaluated_on"].split(",")[0])
            for r in document["results"]
        ]
        outcomes[workers] = (code, results, document["meta"]["normcore"])
    assert outcomes["1"] == outcomes["3"]
    code, results, kpi = outcomes["3"]
    assert code == (0 if case == "valid" else 1)
    assert (kpi["in_range"], kpi["values"]) == _conformity_reference(table, fitted.artifact)
    failed = {(r[0]["kwargs"].get("column", "(table)"), r[0]["type"]) for r in results if not r[1]}
    assert failed == (set() if case == "valid" else {TAMPERING[case][1:]})
    assert {r[3] for r in results} == {"every row (3000)", "uniform sample of 500 rows (seed 3)"}
    # The sample is the rows a uniform draw of the seed picks, wherever their fragment was read.
    chosen = np.sort(np.random.default_rng(3).choice(table.num_rows, size=500, replace=False))
    for config, _, result, _ in results:
        if config["type"] == "expect_column_mean_to_be_between":
            values = table.column(config["kwargs"]["column"]).to_numpy(zero_copy_only=False)[chosen]
            expected = float(np.mean(values[np.isfinite(values)]))
            assert result["observed_value"] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_a_report_path_with_dollar_signs_and_quotes_is_written_as_given(fitted, tmp_path, capsys):
    """Great Expectations reads ``$NAME`` in a site's path as a variable: normcore builds the
    site elsewhere, so the report lands at the path the user gave."""
    report = tmp_path / "it's $HOME ${USER}" / "report"
    code, out, err = _validate(capsys, str(fitted.output), "--artifact", str(fitted.artifact), "--report", str(report))
    assert code == 0, out + err
    assert (report / "validation_result.json").is_file()
    assert (report / "data_docs" / "index.html").is_file()
