"""The Spark engine through its entry points: spark-submit, the normcore CLI, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from engine_agreement import apply_with, assert_artifacts_agree, assert_tables_equal, fit_with, read_output

from normcore.artifact import load_artifact
from normcore.cli import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FEATURES = [
    {"name": "a", "method": "zscore"},
    {"name": "b", "method": "minmax"},
    {"name": "c", "method": "robust"},
    {"name": "tied", "method": "quantile"},
]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}


def test_spark_submit_fit_agrees_with_local_engine(engine_data: Path, tmp_path: Path) -> None:
    """``fit`` under spark-submit (``apply`` and ``run`` share its entry point and are tested in-process)."""
    artifact = tmp_path / "artifact.json"
    command = [
        str(BIN / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        str(ROOT / "pipelines" / "spark" / "normalize.py"),
        "fit",
        str(engine_data),
        "--features",
        ",".join(f"{f['name']}:{f['method']}" for f in FEATURES),
        "--key",
        "k_str",
        "--artifact",
        str(artifact),
    ]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"artifact: {artifact} (2000 rows, 4 features)" in done.stdout
    fitted = load_artifact(artifact)
    assert fitted.engine == "spark"
    assert_artifacts_agree(fit_with("local", {"features": FEATURES, "key": "k_str"}, engine_data), fitted)


def test_cli_apply_writes_the_output_atomically(spark, engine_data: Path, tmp_path: Path, capsys) -> None:
    artifact = fit_with("local", {"features": FEATURES, "key": "k_int"}, engine_data)
    artifact.save(tmp_path / "artifact.json")
    output = tmp_path / "normalized"
    argv = ["apply", str(engine_data), "--artifact", str(tmp_path / "artifact.json"), "--output", str(output)]
    assert main([*argv, "--engine", "spark"]) == 0
    assert f"output: {output} (2000 rows)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact.json", "normalized"]
    apply_with("local", artifact, engine_data, tmp_path / "local")
    assert_tables_equal(read_output(tmp_path / "local"), read_output(output))


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    rows = 50
    table = pa.table({"id": np.arange(rows), "x": np.full(rows, np.nan), "y": np.arange(rows, dtype=float)})
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(table, data / "part-0.parquet")
    before = sorted(p.name for p in tmp_path.iterdir())
    command = [
        str(BIN / "normcore"),
        "run",
        str(data),
        "--engine",
        "spark",
        "--master",
        "local[1]",
        "--conf",
        "spark.ui.enabled=false",
        "--artifact",
        str(tmp_path / "artifact.json"),
        "--output",
        str(tmp_path / "out"),
        "--features",
        "x,y",  # named: a column without a finite value is an error (the default selection skips it)
    ]
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]]
    # No Java logs: only the JVM's own start-up notice may precede the error line.
    assert [line for line in done.stderr.splitlines() if "incubator modules" not in line] == errors
    assert "column 'x'" in errors[0] and "no finite value" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _corrupt(path: Path) -> None:
    """Scramble the data pages of a Parquet file, keeping its footer (its schema reads fine)."""
    content = bytearray(path.read_bytes())
    for index in range(64, len(content) // 2):
        content[index] = (content[index] * 7 + 13) % 256
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("command", ["fit", "apply"])
def test_unreadable_file_exits_2_naming_it_and_writes_nothing(
    spark, engine_data: Path, tmp_path: Path, capsys, command: str
) -> None:
    artifact = tmp_path / "artifact.json"
    fit_with("local", {"features": [{"name": "a"}]}, engine_data).save(artifact)
    data = tmp_path / "data"
    data.mkdir()
    for part in sorted(engine_data.iterdir()):
        (data / part.name).write_bytes(part.read_bytes())
    broken = sorted(data.iterdir())[2]
    _corrupt(broken)
    capsys.readouterr()
    if command == "fit":
        argv = ["fit", str(data), "--artifact", str(tmp_path / "new.json"), "--features", "a"]
    else:
        argv = ["apply", str(data), "--artifact", str(artifact), "--output", str(tmp_path / "out")]
    assert main([*argv, "--engine", "spark"]) == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert message[-1].startswith("error: cannot read input file") and broken.name in message[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact.json", "data"]


def test_empty_input_exits_2(spark, tmp_path: Path, capsys) -> None:
    data = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), data)
    assert main(["fit", str(data), "--artifact", str(tmp_path / "a.json"), "--engine", "spark"]) == 2
    assert "has no rows" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


def test_csv_input_agrees_with_local_engine(spark, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = 300
    table = pa.table(
        {
            "id": np.arange(rows),
            "label": [f"item {i}" for i in range(rows)],
            "x": pa.array(rng.normal(3.0, 2.0, rows), mask=rng.random(rows) < 0.05),
            "n": rng.integers(0, 1000, rows),
        }
    )
    data = tmp_path / "data.csv"
    pacsv.write_csv(table, data)
    config = {"features": [{"name": "x"}, {"name": "n", "method": "minmax"}]}
    local = fit_with("local", config, data)
    assert_artifacts_agree(local, fit_with("spark", config, data))
    apply_with("local", local, data, tmp_path / "local")
    apply_with("spark", local, data, tmp_path / "spark")
    assert_tables_equal(read_output(tmp_path / "local"), read_output(tmp_path / "spark"))


@pytest.mark.parametrize("verbose", [False, True])
def test_a_worker_error_is_one_line_and_verbose_adds_the_java_trace(
    engine_data: Path, tmp_path: Path, verbose: bool
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for part in sorted(engine_data.iterdir()):
        (data / part.name).write_bytes(part.read_bytes())
    broken = sorted(data.iterdir())[1]
    _corrupt(broken)
    command = [
        str(BIN / "normcore"),
        "apply",
        str(data),
        "--artifact",
        str(tmp_path / "a.json"),
        "--output",
        str(tmp_path / "out"),
        "--engine",
        "spark",
        "--master",
        "local[1]",
    ] + (["--verbose"] if verbose else [])
    fit_with("local", {"features": [{"name": "a"}]}, engine_data).save(tmp_path / "a.json")
    done = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "incubator modules" not in line]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "cannot read input file" in errors[0] and broken.name in errors[0]
    if verbose:
        assert any(line.strip().startswith("at org.apache.spark") for line in lines)
    else:
        assert lines == errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "data"]


def test_a_bad_master_is_one_line_naming_the_option(tmp_path: Path, capsys) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "d.parquet")
    code = main(["fit", str(tmp_path / "d.parquet"), "--artifact", str(tmp_path / "a.json"), "--engine", "spark",
                 "--master", "bogus://host:7077"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: option --master: 'bogus://host:7077' is not a Spark master URL; expected local, local[N], local[*], "
        "spark://HOST:PORT, yarn or k8s://URL"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet"]


@pytest.mark.parametrize(
    ("arguments", "config", "message"),
    [
        (["--remote", "http://host:15002"], None,
         "error: option --remote: 'http://host:15002' is not a Spark Connect URL; expected sc://HOST:PORT"),
        ([], "spark:\n  remote: sc://host:15002\n  master: local[2]\n",
         "error: job.yaml: spark: give master (a cluster) or remote (Spark Connect), not both"),
        ([], "spark:\n  remote: host:15002\n",
         "error: job.yaml: spark.remote: 'host:15002' is not a Spark Connect URL; expected sc://HOST:PORT"),
    ],
)  # fmt: skip
def test_a_bad_remote_is_one_line_naming_the_option_or_key(
    tmp_path: Path, capsys, arguments: list[str], config: str | None, message: str
) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "d.parquet")
    if config is not None:
        (tmp_path / "job.yaml").write_text(config)
        arguments = [*arguments, "--config", str(tmp_path / "job.yaml")]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["fit", str(tmp_path / "d.parquet"), "--artifact", str(tmp_path / "a.json"), "--engine", "spark",
                 *arguments])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].replace(str(tmp_path) + "/", "") == message, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
