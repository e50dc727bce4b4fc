"""Each command loads only what it uses: no heavy engine for local commands, and no
pandas / scipy / pyarrow for ``import normcore`` and ``normcore inspect`` (start-up
cost; its figures are in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HEAVY = ["apache_beam", "pyspark", "great_expectations", "torch", "matplotlib"]
#: Modules with an import cost of 0.1 - 0.5 s each that a local command may do without.
SLOW = ["pandas", "scipy", "pyarrow", "pyarrow.dataset", "pyarrow.compute", "yaml"]

PROBE = """
import json, sys
from normcore.cli import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "loaded": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}))
"""


def _loaded(commands: list[list[str]], modules: list[str]) -> tuple[list[int], list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands), json.dumps(modules)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["codes"], report["loaded"]


def _fitted(tmp_path: Path) -> tuple[str, str]:
    data = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"x": [1.0, 2.0, 4.0], "y": [3.0, 1.0, 2.0]}), data)
    art = str(tmp_path / "a.json")
    codes, _ = _loaded([["fit", data, "--artifact", art]], [])
    assert codes == [0]
    return data, art


def test_local_fit_apply_inspect_import_no_heavy_engine(tmp_path: Path) -> None:
    data, art = _fitted(tmp_path)
    commands = [
        ["fit", data, "--artifact", str(tmp_path / "b.json")],
        ["apply", data, "--artifact", art, "--output", str(tmp_path / "out")],
        ["inspect", art],
    ]
    codes, loaded = _loaded(commands, HEAVY)
    assert codes == [0, 0, 0]
    assert loaded == []


def test_inspect_loads_no_dataframe_or_arrow(tmp_path: Path) -> None:
    _, art = _fitted(tmp_path)
    codes, loaded = _loaded([["inspect", art]], SLOW)
    assert codes == [0]
    assert loaded == []


def test_parquet_apply_loads_no_pandas(tmp_path: Path) -> None:
    data, art = _fitted(tmp_path)
    codes, loaded = _loaded([["apply", data, "--artifact", art, "--output", str(tmp_path / "out")]], SLOW)
    assert codes == [0]
    assert loaded == ["pyarrow"]  # no compute kernels for float64 columns without nulls, no YAML without --config


def test_run_without_validation_loads_no_quality_stack(tmp_path: Path) -> None:
    data, _ = _fitted(tmp_path)
    argv = ["run", data, "--artifact", str(tmp_path / "r.json"), "--output", str(tmp_path / "out"), "--no-validate"]
    codes, loaded = _loaded([argv], [*HEAVY, *SLOW])
    assert codes == [0]
    assert loaded == ["pyarrow"]


def test_config_file_nulls_and_integers_load_what_they_need(tmp_path: Path) -> None:
    data = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"x": [1.0, None, 4.0], "y": [3, 1, 2]}), data)
    config = tmp_path / "job.yaml"
    config.write_text(f"input: {data}\nartifact: {tmp_path / 'a.json'}\n")
    codes, loaded = _loaded([["fit", "--config", str(config)]], SLOW)
    assert codes == [0]
    assert loaded == ["pyarrow", "pyarrow.compute", "yaml"]


def test_parquet_fit_loads_no_pandas(tmp_path: Path) -> None:
    data, _ = _fitted(tmp_path)
    codes, loaded = _loaded([["fit", data, "--artifact", str(tmp_path / "b.json")]], SLOW)
    assert codes == [0]
    assert loaded == ["pyarrow"]


def test_import_normcore_loads_only_itself() -> None:
    probe = "import json, sys, normcore; print(json.dumps(sorted(m for m in sys.modules if m.startswith('normcore'))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["normcore", "normcore.errors", "normcore.lazy"]
    attribute = "import normcore; print(normcore.Normalizer.__module__, normcore.load_artifact.__module__)"
    result = subprocess.run([sys.executable, "-c", attribute], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["normcore.api", "normcore.artifact"]



NUMPY_SERVING = """
import json, sys
import numpy as np
import normcore
normalizer = normcore.Normalizer.from_artifact(sys.argv[1])
rows = np.array([[1.0, 3.0], [4.0, 2.0], [np.nan, np.inf]])
out = normalizer.transform(rows)
back = normalizer.inverse_transform(out)
loaded = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"out": out.tolist(), "back": back.tolist(), "loaded": loaded}))
"""


def test_numpy_normalizer_loads_no_arrow_or_pandas(tmp_path: Path) -> None:
    """A server that loads an artifact and normalizes arrays pays for NumPy, not pyarrow."""
    _, art = _fitted(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", NUMPY_SERVING, art, json.dumps(SLOW)], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    fitted = np.array([[1.0, 3.0], [2.0, 1.0], [4.0, 2.0]])  # _fitted's columns x, y
    expected = (np.array([[1.0, 3.0], [4.0, 2.0]]) - fitted.mean(axis=0)) / fitted.std(axis=0)
    np.testing.assert_allclose(report["out"][:2], expected, rtol=1e-15, atol=0)
    assert np.isnan(report["out"][2][0]) and report["out"][2][1] == np.inf  # non-finite values pass through
    np.testing.assert_allclose(report["back"][:2], [[1.0, 3.0], [4.0, 2.0]], rtol=1e-15, atol=0)

def test_engine_modules_load_no_quality_stack() -> None:
    """A Spark or Beam fit / apply loads its engine module: Great Expectations (seconds
    of import) comes only with ``validate``, and the Spark engine reads footers, not
    ``pyarrow.dataset`` (which imports pandas)."""
    probe = (
        "import json, sys, importlib; importlib.import_module(sys.argv[1]); "
        "print(json.dumps([m for m in json.loads(sys.argv[2]) if m in sys.modules]))"
    )
    expected_absent = {
        "pipelines.spark.engine": ["great_expectations", "pandas", "scipy", "pyarrow.dataset"],
        "pipelines.beam.engine": ["great_expectations"],  # Beam itself imports pandas
    }
    for module, absent in expected_absent.items():
        result = subprocess.run(
            [sys.executable, "-c", probe, module, json.dumps(absent)], capture_output=True, text=True, check=True
        )
        assert json.loads(result.stdout.strip().splitlines()[-1]) == [], module
