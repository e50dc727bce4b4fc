"""The CLI loads Beam, Spark, Great Expectations and torch only for commands that need them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HEAVY = ["apache_beam", "pyspark", "great_expectations", "torch", "matplotlib"]

PROBE = """
import json, sys
from normcore.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "loaded": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def test_local_fit_apply_inspect_import_no_heavy_engine(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0, 4.0], "y": [3, 1, 2]}), tmp_path / "d.parquet")
    art, out = str(tmp_path / "a.json"), str(tmp_path / "out")
    commands = [
        ["fit", str(tmp_path / "d.parquet"), "--artifact", art],
        ["apply", str(tmp_path / "d.parquet"), "--artifact", art, "--output", out],
        ["inspect", art],
    ]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, 0, 0]
    assert report["loaded"] == []
