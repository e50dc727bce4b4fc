"""Bad input: exit 2, one line ``error: ...`` naming what is wrong, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.artifact import compute_checksum
from normcore.cli import main


@pytest.fixture()
def workspace(tmp_path: Path, sample_table: pa.Table) -> Path:
    pq.write_table(sample_table, tmp_path / "data.parquet")
    assert main(["fit", str(tmp_path / "data.parquet"), "--artifact", str(tmp_path / "good.json")]) == 0
    return tmp_path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def _files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def _tamper(source: Path, target: Path, change, reseal: bool = False) -> Path:
    document = json.loads(source.read_text())
    change(document)
    if reseal:
        document["checksum"] = compute_checksum(document)
    target.write_text(json.dumps(document))
    return target


CASES = {
    "missing input": (
        ["fit", "{w}/nope.parquet", "--artifact", "{w}/out.json"],
        "input '{w}/nope.parquet' does not exist",
    ),
    "unknown column": (
        ["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--features", "price,prize"],
        "column 'prize' is not in '{w}/data.parquet'; available columns: id, category, price",
    ),
    "non-numeric column": (
        ["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--features", "category"],
        "column 'category' in '{w}/data.parquet' has type string",
    ),
    "unknown method option": (
        ["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--method", "zscroe"],
        "option --method: unknown method 'zscroe'; expected one of zscore, minmax",
    ),
    "unknown method in features": (
        ["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--features", "price:zscroe"],
        "option --features: unknown method 'zscroe' for 'price'",
    ),
    "bad ddof": (["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--ddof", "2"], "option --ddof:"),
    "empty dataset": (
        ["fit", "{w}/empty.parquet", "--artifact", "{w}/out.json"],
        "input '{w}/empty.parquet' has no rows",
    ),
    "no finite value": (
        ["fit", "{w}/nan.parquet", "--artifact", "{w}/out.json"],
        "column 'x' in '{w}/nan.parquet' has no finite value to fit (1 null, 2 NaN, 1 inf)",
    ),
    "wrong checksum": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/tampered.json", "--output", "{w}/out"],
        "artifact '{w}/tampered.json': checksum mismatch",
    ),
    "unknown version": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/v9.json", "--output", "{w}/out"],
        "artifact '{w}/v9.json': version 9 is not supported",
    ),
    "missing field": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/nofeatures.json", "--output", "{w}/out"],
        "required field 'features' is missing",
    ),
    "non-JSON artifact": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/text.json", "--output", "{w}/out"],
        "artifact '{w}/text.json' is not valid JSON",
    ),
    "data lacks a fitted column": (
        ["apply", "{w}/narrow.parquet", "--artifact", "{w}/good.json", "--output", "{w}/out"],
        "input '{w}/narrow.parquet' lacks fitted column(s) rate, count",
    ),
    "config typo": (
        ["fit", "--config", "{w}/typo.yaml"],
        "{w}/typo.yaml: features[0].params.feature_rnage: unknown key",
    ),
    "config unknown top-level key": (["fit", "--config", "{w}/top.yaml"], "{w}/top.yaml: enigne: unknown key"),
    "files with incompatible schemas": (
        ["fit", "{w}/mixed", "--artifact", "{w}/out.json"],
        "'{w}/mixed/p2.parquet' does not match the schema of '{w}/mixed/p1.parquet'",
    ),
    "corrupt parquet file": (
        ["fit", "{w}/corrupt.parquet", "--artifact", "{w}/out.json"],
        "cannot read '{w}/corrupt.parquet' as parquet",
    ),
    "unknown option": (
        ["fit", "{w}/data.parquet", "--artifact", "{w}/out.json", "--bogus"],
        "unrecognized arguments: --bogus",
    ),
    "missing artifact option": (["fit", "{w}/data.parquet"], "option --artifact is required"),
    "output is a directory of the user's": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/good.json", "--output", "{w}/taken", "--overwrite"],
        "option --output: '{w}/taken' exists and was not written by normcore; it is left as it is",
    ),
    "output exists": (
        ["apply", "{w}/data.parquet", "--artifact", "{w}/good.json", "--output", "{w}/previous"],
        "option --output: output directory '{w}/previous' already exists; pass --overwrite to replace it",
    ),
}


def _prepare(w: Path) -> None:
    good = w / "good.json"
    pq.write_table(pa.table({"price": pa.array([], pa.float64())}), w / "empty.parquet")
    pq.write_table(pa.table({"x": pa.array([np.nan, None, np.inf, np.nan], pa.float64())}), w / "nan.parquet")
    pq.write_table(pa.table({"price": [1.0, 2.0], "latency": [3.0, 4.0], "constant": [1.0, 1.0]}), w / "narrow.parquet")
    _tamper(good, w / "tampered.json", lambda d: d["features"]["price"]["stats"].update(mean=0.0))
    _tamper(good, w / "v9.json", lambda d: d.update(version=9), reseal=True)
    _tamper(good, w / "nofeatures.json", lambda d: d.pop("features"), reseal=True)
    (w / "text.json").write_text("this is not JSON")
    (w / "mixed").mkdir()
    pq.write_table(pa.table({"price": [1.0, 2.0]}), w / "mixed" / "p1.parquet")
    pq.write_table(pa.table({"price": ["a", "b"]}), w / "mixed" / "p2.parquet")
    (w / "corrupt.parquet").write_bytes(b"not a parquet file")
    (w / "typo.yaml").write_text(
        f"input: {w}/data.parquet\nartifact: {w}/out.json\nfeatures:\n  - name: rate\n    method: minmax\n"
        "    params: {feature_rnage: [0, 1]}\n"
    )
    (w / "top.yaml").write_text(f"input: {w}/data.parquet\nartifact: {w}/out.json\nenigne: spark\n")
    (w / "taken").mkdir()
    (w / "taken" / "keep.txt").write_text("user data")
    assert main(["apply", str(w / "data.parquet"), "--artifact", str(good), "--output", str(w / "previous")]) == 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(workspace: Path, capsys, case: str) -> None:
    _prepare(workspace)
    argv, expected = CASES[case]
    before = _files(workspace)
    code, err = _run([a.format(w=workspace) for a in argv], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected.format(w=workspace) in lines[0]
    assert _files(workspace) == before, "nothing may be written on exit 2"


def test_real_process_exit_code_and_no_traceback(workspace: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "normcore.cli",
            "fit",
            str(workspace / "data.parquet"),
            "--artifact",
            str(workspace / "x.json"),
            "--features",
            "nope",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: column 'nope'") and "Traceback" not in result.stderr
    assert not (workspace / "x.json").exists()


def test_failure_during_apply_leaves_no_output(workspace: Path, capsys, monkeypatch) -> None:
    import normcore.engines.local as local

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(local.RollingParquetWriter, "close", broken)
    code, err = _run(
        ["apply", str(workspace / "data.parquet"), "--artifact", str(workspace / "good.json"), "--output",
         str(workspace / "out")],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [f"error: cannot write --output '{workspace / 'out'}': disk full"]
    assert sorted(_files(workspace)) == ["data.parquet", "good.json"]
