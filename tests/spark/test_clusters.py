"""The Spark engine on real clusters started here: a standalone master with two workers
(separate JVMs), and a Spark Connect server; the normcore CLI runs against each in a
process of its own, and its artifact and output are compared with the local engine's."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from clusters import connect_server, free_port, standalone_cluster
from engine_agreement import apply_with, assert_artifacts_agree, assert_tables_equal, fit_with, read_output

from normcore.artifact import load_artifact

BIN = Path(sys.executable).parent
#: Moments, exact quantiles (2,000 rows stay below the sketch's first compaction) and a key.
FEATURES = [
    {"name": "a", "method": "zscore"},
    {"name": "big", "method": "zscore"},
    {"name": "b", "method": "minmax"},
    {"name": "d", "method": "maxabs"},
    {"name": "c", "method": "robust"},
    {"name": "tied", "method": "quantile"},
]
SPEC = ",".join(f"{f['name']}:{f['method']}" for f in FEATURES)
#: Normalized values of the two engines may differ as their artifacts do (to ~1e-12).
OUTPUT_ATOL = {f["name"]: 1e-10 for f in FEATURES}


def _normcore(*arguments: str, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "PYSPARK_PYTHON"}
    return subprocess.run(
        [str(BIN / "normcore"), *arguments], env=environment, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def local_reference(engine_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The local engine's keyed artifact and output on the engine data."""
    artifact = fit_with("local", {"features": FEATURES, "key": "k_str"}, engine_data)
    output = tmp_path_factory.mktemp("local") / "out"
    apply_with("local", artifact, engine_data, output)
    return artifact, read_output(output)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with standalone_cluster(tmp_path_factory.mktemp("standalone")) as master:
        yield master


@pytest.fixture(scope="module")
def connect(tmp_path_factory: pytest.TempPathFactory):
    with connect_server(tmp_path_factory.mktemp("connect")) as url:
        yield url


def test_run_on_a_standalone_cluster_agrees_with_the_local_engine(
    cluster: str, engine_data: Path, local_reference, tmp_path: Path
) -> None:
    """``normcore run --master spark://...`` from the CLI (no PYSPARK_PYTHON): the executors
    run this interpreter, and the artifact and output equal the local engine's."""
    artifact, output = tmp_path / "artifact.json", tmp_path / "out"
    done = _normcore(
        "run", str(engine_data), "--engine", "spark", "--master", cluster, "--features", SPEC, "--key", "k_str",
        "--artifact", str(artifact), "--output", str(output), "--conf", "spark.executor.memory=512m",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    expected_artifact, expected_output = local_reference
    fitted = load_artifact(artifact)
    assert fitted.engine == "spark"
    assert_artifacts_agree(expected_artifact, fitted)
    assert_tables_equal(expected_output, read_output(output), OUTPUT_ATOL)


def test_executors_without_normcore_are_one_error_line(cluster: str, engine_data: Path, tmp_path: Path) -> None:
    """Executors told to run a Python that lacks normcore: exit 2, one ``error:`` line that
    says so and how to fix it, no artifact."""
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    artifact = tmp_path / "artifact.json"
    done = _normcore(
        "fit", str(engine_data), "--engine", "spark", "--master", cluster, "--features", "a",
        "--artifact", str(artifact), "--conf", f"spark.pyspark.python={bare / 'bin' / 'python'}",
        "--conf", "spark.executor.memory=512m", "--conf", "spark.task.maxFailures=1",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "the Spark executors cannot import normcore" in errors[0]
    assert "spark.pyspark.python" in errors[0]
    assert not artifact.exists()


def test_fit_and_apply_over_spark_connect_agree_with_the_local_engine(
    connect: str, engine_data: Path, local_reference, tmp_path: Path
) -> None:
    """``fit`` and ``apply`` with ``--remote sc://...``: the DataFrame-only fit (no RDD) and
    the native apply give the local engine's artifact and output."""
    artifact, output = tmp_path / "artifact.json", tmp_path / "out"
    done = _normcore(
        "fit", str(engine_data), "--engine", "spark", "--remote", connect, "--features", SPEC, "--key", "k_str",
        "--artifact", str(artifact),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    expected_artifact, expected_output = local_reference
    assert_artifacts_agree(expected_artifact, load_artifact(artifact))
    done = _normcore(
        "apply", str(engine_data), "--engine", "spark", "--remote", connect, "--artifact", str(artifact),
        "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"output: {output} (2000 rows)" in done.stdout
    assert_tables_equal(expected_output, read_output(output), OUTPUT_ATOL)


def test_a_second_connect_fit_gives_the_same_artifact(connect: str, engine_data: Path, tmp_path: Path) -> None:
    """The Connect fit merges in partition and key order: the same input, the same artifact."""
    fitted = []
    for name in ("first.json", "second.json"):
        done = _normcore(
            "fit", str(engine_data), "--engine", "spark", "--remote", connect, "--features", SPEC,
            "--key", "k_str", "--artifact", str(tmp_path / name),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        document = load_artifact(tmp_path / name).document
        fitted.append({k: v for k, v in document.items() if k not in ("created_at", "checksum")})
    assert fitted[0] == fitted[1]


def test_an_unreachable_connect_server_is_one_error_line(engine_data: Path, tmp_path: Path) -> None:
    """Nobody listens at ``--remote``: exit 2 at once (not the client's ten minutes of retries)."""
    artifact = tmp_path / "artifact.json"
    done = _normcore(
        "fit", str(engine_data), "--engine", "spark", "--remote", f"sc://127.0.0.1:{free_port()}",
        "--artifact", str(artifact), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: option --remote: cannot reach the Spark Connect")
    assert not artifact.exists()
