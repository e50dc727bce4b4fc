"""pandas and Spark validation give the same verdicts on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from quality.quality_support import PASSTHROUGH


def _tampered(output: Path, target: Path) -> Path:
    """Values out of range in ``rate``, 10 rows dropped, one ``category`` altered."""
    table = ds.dataset(output).to_table()
    rate = table.column("rate").to_numpy(zero_copy_only=False).copy()
    rate[100:130] = 5.0
    category = table.column("category").to_pylist()
    category[7] = "gardening"
    table = table.set_column(table.schema.get_field_index("rate"), "rate", pa.array(rate))
    table = table.set_column(table.schema.get_field_index("category"), "category", pa.array(category))
    table = pa.concat_tables([table.slice(0, 1000), table.slice(1010)])
    target.mkdir()
    pq.write_table(table, target / "part-0.parquet")
    return target


def _verdicts(report: Path) -> tuple[dict, dict]:
    result = json.loads((report / "validation_result.json").read_text())
    verdicts = {}
    for entry in result["results"]:
        config = entry["expectation_config"]
        assert not entry["exception_info"]["raised_exception"], entry["exception_info"]
        verdicts[(config["kwargs"].get("column"), config["type"])] = entry["success"]
    return verdicts, result["meta"]["normcore"]


@pytest.mark.parametrize("tamper", [False, True], ids=["valid", "tampered"])
def test_pandas_and_spark_agree(spark, fitted, tmp_path, capsys, tamper):
    data = _tampered(fitted.output, tmp_path / "tampered") if tamper else fitted.output
    outcomes = {}
    for engine in ("local", "spark"):
        report = tmp_path / engine
        argv = ["validate", str(data), "--artifact", str(fitted.artifact), "--source", str(fitted.raw)]
        code = main([*argv, "--engine", engine, "--report", str(report)])
        outcomes[engine] = (code, *_verdicts(report))
    capsys.readouterr()
    (local_code, local, local_kpi), (spark_code, remote, spark_kpi) = outcomes["local"], outcomes["spark"]
    assert local_code == spark_code == (1 if tamper else 0)
    assert local == remote
    assert len(local) > 20
    for key in ("in_range", "values", "rows", "input_range_conformity"):
        assert local_kpi[key] == spark_kpi[key], key
    failed = sorted((column or "(table)", kind) for (column, kind), ok in local.items() if not ok)
    if tamper:
        checksums = [(name, "expect_column_checksum_to_equal") for name in PASSTHROUGH]
        expected = [("(table)", "expect_table_row_count_to_equal"), ("rate", "expect_column_values_to_be_between")]
        assert failed == sorted(expected + checksums)
    else:
        assert failed == []


def test_spark_validation_reads_sources_whose_files_differ_in_integer_width(spark, tmp_path, capsys):
    import numpy as np

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(5)
    for index, width in enumerate((pa.int32(), pa.int64())):
        table = pa.table({"x": rng.normal(0, 1, 300), "shop": pa.array(rng.integers(0, 9, 300), width)})
        pq.write_table(table, raw / f"part-{index}.parquet")
    artifact, output = tmp_path / "a.json", tmp_path / "out"
    assert main(["fit", str(raw), "--artifact", str(artifact), "--features", "x"]) == 0
    assert main(["apply", str(raw), "--artifact", str(artifact), "--output", str(output)]) == 0
    argv = ["validate", str(output), "--artifact", str(artifact), "--source", str(raw), "--engine", "spark"]
    assert main([*argv, "--report", str(tmp_path / "report")]) == 0
    verdicts, kpi = _verdicts(tmp_path / "report")
    assert verdicts[("shop", "expect_column_checksum_to_equal")] is True
    assert kpi["rows"] == 600
    capsys.readouterr()
