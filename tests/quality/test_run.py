"""``normcore run`` ends with validation; its exit code says whether the output conformed.
Without validation it is ``fit`` then ``apply`` in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from quality.quality_support import quality_table, write_config


def _job(root: Path, table: pa.Table, **validation) -> Path:
    (root / "raw").mkdir()
    pq.write_table(table, root / "raw" / "part-0.parquet")
    return write_config(
        root / "job.yaml",
        input=str(root / "raw"),
        artifact=str(root / "artifact.json"),
        output=str(root / "normalized"),
        validation={"report": str(root / "validation"), **validation},
    )


def test_run_validates_and_says_where_everything_went(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative paths, as in configs/local.yaml
    config = _job(Path("."), quality_table(1_500, seed=12))
    assert main(["run", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("result: PASS (") for line in lines)
    assert lines[-4].startswith("artifact: artifact.json (1500 rows")
    assert lines[-3] == "output: normalized (1500 rows)"
    assert lines[-1].startswith("run: 1500 rows in ") and lines[-1].endswith("input range conformity 100.00%")
    assert (
        lines[-2] == "validation report: validation (validation_result.json, data docs validation/data_docs/index.html)"
    )
    result = json.loads((tmp_path / "validation" / "validation_result.json").read_text())
    assert result["success"] is True
    assert result["meta"]["normcore"]["source"] == "raw"
    assert result["meta"]["normcore"]["passthrough"] == ["id", "category", "constant", "bucket", "flag"]


def test_run_exits_1_when_the_output_does_not_conform(tmp_path, capsys, monkeypatch):
    # Inject a defect into apply (price comes out 100x too wide): run still writes the
    # artifact, the output and the report, and exits 1 naming the column.
    from normcore.apply import BatchNormalizer

    faithful = BatchNormalizer.transform_values

    def defective(self, name, values, key=None):
        result = faithful(self, name, values, key)
        return result * 100 if name == "price" else result

    monkeypatch.setattr(BatchNormalizer, "transform_values", defective)
    config = _job(tmp_path, quality_table(1_500, seed=12))
    assert main(["run", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    line = next(x for x in captured.out.splitlines() if x.startswith("  price: expect_column_values_to_be_between ("))
    share = float(line.split("(")[1].split("%")[0])
    assert 0 < share < 100
    assert "  price: expect_column_stdev_to_be_between (" in captured.out
    assert "price: expect_column_values_to_be_between" in captured.err
    for written in ("artifact.json", "normalized", "validation/validation_result.json"):
        assert (tmp_path / written).exists(), written


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ({"sample_rows": 5}, "validation.sample_rows: Input should be greater than or equal to 100"),
        ({"quantiles": [0.5, 1.5]}, "validation.quantiles: quantiles must lie strictly between 0 and 1, got [1.5]"),
    ],
)
def test_run_with_bad_validation_config_writes_nothing(tmp_path, capsys, validation, message):
    config = _job(tmp_path, quality_table(200, seed=1), **validation)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_run_refuses_a_report_directory_of_other_files_before_fitting(tmp_path, capsys):
    config = _job(tmp_path, quality_table(200, seed=1))
    (tmp_path / "validation").mkdir()
    (tmp_path / "validation" / "notes.txt").write_text("mine")
    assert main(["run", "--config", str(config)]) == 2
    assert "exists and was not written by normcore" in capsys.readouterr().err
    assert not (tmp_path / "artifact.json").exists() and not (tmp_path / "normalized").exists()


@pytest.mark.parametrize("switch", ["--no-validate", "enabled: false"])
def test_run_without_validation_writes_what_fit_and_apply_write(tmp_path, capsys, switch):
    config = _job(tmp_path, quality_table(1_500, seed=12), **({"enabled": False} if switch != "--no-validate" else {}))
    argv = ["run", "--config", str(config), *([switch] if switch == "--no-validate" else [])]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith(f"validation: off; check the output with normcore validate {tmp_path / 'normalized'}")
    assert not (tmp_path / "validation").exists()
    job = ["--config", str(config), "--artifact", str(tmp_path / "fit.json")]
    assert main(["fit", *job]) == 0
    assert main(["apply", *job, "--output", str(tmp_path / "applied")]) == 0
    ran, fitted = (json.loads((tmp_path / name).read_text()) for name in ("artifact.json", "fit.json"))
    assert ran["features"] == fitted["features"] and ran["rows"] == fitted["rows"] == 1_500
    ran_rows, applied_rows = (ds.dataset(tmp_path / name).to_table() for name in ("normalized", "applied"))
    assert ran_rows.schema == applied_rows.schema
    assert ran_rows.to_pandas().equals(applied_rows.to_pandas())  # NaN equal to NaN, dtypes and order compared


@pytest.mark.parametrize("switch", ["--no-validate", "enabled: false"])
def test_run_refuses_a_report_it_would_not_write(tmp_path, capsys, switch):
    config = _job(tmp_path, quality_table(200, seed=1), **({"enabled": False} if switch != "--no-validate" else {}))
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["run", "--config", str(config), "--report", str(tmp_path / "r"), *([switch] if switch[0] == "-" else [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: option --report: there is no validation report to write (")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
