"""End-to-end check of the ``normcore`` Airflow DAG (``make airflow-test``).

Run with the Python of normcore's venv (it writes the sample data); Airflow runs from its own
venv, given by ``--airflow``::

    .venv/bin/python tests/airflow/check_dag.py --airflow .venv-airflow/bin/airflow \\
        --normcore .venv/bin/normcore

In a temporary ``AIRFLOW_HOME`` (SQLite) with ``pipelines/airflow`` as the DAGs folder:
``airflow db migrate``; ``airflow dags list-import-errors --local`` must list none; then
``airflow dags test normcore`` twice, fitting on a reference sample (seed 7):

- a clean batch (seed 8, the same distribution) must succeed: exit 0, every task
  ``success``, the artifact and both reports written;
- a tampered batch (the same rows with ``price`` in cents: x100, far outside the fitted
  range) must fail at validate: exit 1, fit and apply ``success``, validate ``failed``,
  drift ``upstream_failed``.

Exits 0 when both hold, 1 with the failed expectation otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from normcore.sample import write_sample

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "normcore"
REFERENCE_ROWS, BATCH_ROWS = 50_000, 10_000
#: A new batch has a few values beyond the reference's extremes (about BATCH_ROWS / REFERENCE_ROWS
#: per tail and feature); tolerating 0.1 % of them keeps the clean run clean.
MOSTLY = 0.999


class CheckFailed(Exception):
    """An expectation of the DAG test did not hold."""


def airflow(binary: str, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    """Run ``airflow ARGUMENTS`` and return the finished process (output captured)."""
    started = time.monotonic()
    result = subprocess.run([binary, *arguments], env=env, capture_output=True, text=True)
    print(f"airflow {' '.join(arguments[:3])}: exit {result.returncode} ({time.monotonic() - started:.0f} s)")
    return result


def json_output(result: subprocess.CompletedProcess) -> list:
    """The JSON list a ``-o json`` command printed (log lines before it are skipped)."""
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("["):
            return json.loads(line)
    raise CheckFailed(f"no JSON in the output:\n{result.stdout}\n{result.stderr}")


def write_tampered(batch: Path, directory: Path) -> None:
    """``batch`` with ``price`` in cents (x100): an upstream unit change."""
    directory.mkdir(parents=True)
    for part in sorted(batch.glob("*.parquet")):
        table = pq.read_table(part)
        index = table.schema.get_field_index("price")
        pq.write_table(table.set_column(index, "price", pc.multiply(table["price"], 100.0)), directory / part.name)


def run_dag(binary: str, env: dict[str, str], logical_date: str, conf: dict) -> tuple[int, dict[str, str], str]:
    """``airflow dags test`` one run; returns its exit code, task states and combined output."""
    result = airflow(binary, env, "dags", "test", DAG_ID, logical_date, "--conf", json.dumps(conf))
    states = airflow(binary, env, "tasks", "states-for-dag-run", DAG_ID, logical_date, "-o", "json")
    if states.returncode != 0:
        raise CheckFailed(f"states-for-dag-run failed:\n{states.stderr}")
    task_states = {row["task_id"]: row["state"] for row in json_output(states)}
    return result.returncode, task_states, result.stdout + result.stderr


def expect_run(name: str, run: tuple[int, dict[str, str], str], exit_code: int, states: dict[str, str]) -> None:
    """Raise CheckFailed unless the run exited with ``exit_code`` and its tasks have ``states``."""
    code, task_states, output = run
    print(f"{name} run: exit {code}, tasks {task_states}")
    if code != exit_code or task_states != states:
        raise CheckFailed(
            f"{name} run: expected exit {exit_code} and tasks {states}; got exit {code} and tasks {task_states}\n"
            f"--- airflow dags test output (last 6000 characters) ---\n{output[-6000:]}"
        )


def check(airflow_binary: str, normcore: str, config: str, work: Path) -> None:
    """Every check of the module docstring, in ``work``."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "pipelines" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    if airflow(airflow_binary, env, "db", "migrate").returncode != 0:
        raise CheckFailed("airflow db migrate failed")
    errors = airflow(airflow_binary, env, "dags", "list-import-errors", "--local", "-o", "json")
    if errors.returncode != 0 or json_output(errors):
        raise CheckFailed(f"the DAGs folder has import errors:\n{errors.stdout}\n{errors.stderr}")

    data = work / "data"
    write_sample(data / "reference", REFERENCE_ROWS, files=2, seed=7)
    write_sample(data / "batch", BATCH_ROWS, files=2, seed=8)
    write_tampered(data / "batch", data / "batch-in-cents")

    def conf(batch: str) -> dict:
        return {
            "normcore": normcore,
            "config": config,
            "reference": str(data / "reference"),
            "input": str(data / batch),
            "artifact": str(work / batch / "artifact.json"),
            "output": str(work / batch / "normalized"),
            "report": str(work / batch / "reports"),
            "mostly": MOSTLY,
        }

    clean = run_dag(airflow_binary, env, "2026-01-01T00:00:00+00:00", conf("batch"))
    expect_run("clean", clean, 0, dict.fromkeys(("fit", "apply", "validate", "drift"), "success"))
    for written in ("artifact.json", "reports/validation/validation_result.json", "reports/drift/drift.json"):
        if not (work / "batch" / written).is_file():
            raise CheckFailed(f"clean run: {work / 'batch' / written} was not written")

    tampered = run_dag(airflow_binary, env, "2026-01-02T00:00:00+00:00", conf("batch-in-cents"))
    failed_at_validate = {"fit": "success", "apply": "success", "validate": "failed", "drift": "upstream_failed"}
    expect_run("tampered", tampered, 1, failed_at_validate)
    # the validate task's own verdict, from the task log line that holds it
    verdicts = [line[line.index("check failed:") :] for line in tampered[2].splitlines() if "check failed:" in line]
    if not verdicts:
        raise CheckFailed(f"tampered run: validate printed no 'check failed:' line\n{tampered[2][-6000:]}")
    print(f"tampered run: {verdicts[0].split(' [airflow.')[0]}")


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the checks in a temporary directory; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", required=True, help="the airflow binary of the Airflow venv")
    parser.add_argument("--normcore", required=True, help="the normcore CLI binary the DAG runs")
    parser.add_argument("--config", default=str(REPO / "configs" / "local.yaml"), help="normcore job file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    # a space and a quote in every path: the DAG must quote its params for bash (not a $:
    # Great Expectations substitutes $NAME in its report paths)
    with tempfile.TemporaryDirectory(prefix="normcore airflow's ") as work:
        try:
            check(str(Path(args.airflow).absolute()), str(Path(args.normcore).absolute()), args.config, Path(work))
        except CheckFailed as exc:
            print(f"airflow-test FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"airflow-test passed ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
