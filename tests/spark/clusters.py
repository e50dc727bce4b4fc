"""Real Spark clusters for tests: a standalone master with workers, and a Spark Connect server.

Each runs in JVMs of its own, started from this venv's PySpark (``spark-class`` /
``spark-submit``) on 127.0.0.1 with free ports, logs under the given directory, and is
stopped by its process group (the launcher scripts ``exec`` java) when the context
exits, on failure too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
#: Seconds a JVM may take to accept connections (CI machines are slow to start Java).
START_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(logs: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(logs),
        "SPARK_WORKER_DIR": str(logs / "work"),
        "PYSPARK_PYTHON": sys.executable,
    }


def _wait_until(ready, what: str, processes: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: a JVM exited with {process.returncode}; logs in {logs}")
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not start within {START_TIMEOUT_S} s; logs in {logs}")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _start(command: list[str], logs: Path, name: str, started: list[subprocess.Popen]) -> subprocess.Popen:
    log = (logs / f"{name}.log").open("wb")
    process = subprocess.Popen(
        command, env=_environment(logs), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    started.append(process)
    return process


@contextlib.contextmanager
def standalone_cluster(logs: Path, workers: int = 2, memory: str = "1g") -> Iterator[str]:
    """A standalone master and ``workers`` workers (1 core each); yields the master URL."""
    logs.mkdir(parents=True, exist_ok=True)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    with _processes() as started:
        _start(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            logs, "master", started,
        )  # fmt: skip

        def alive_workers() -> int:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as reply:
                    return int(json.load(reply).get("aliveworkers", 0))
            except OSError:
                return -1

        _wait_until(lambda: alive_workers() >= 0, "the Spark master", started, logs)
        for index in range(workers):
            _start(
                [spark_class, "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1",
                 "--cores", "1", "--memory", memory, "--webui-port", str(free_port()),
                 "--work-dir", str(logs / f"work-{index}")],
                logs, f"worker-{index}", started,
            )  # fmt: skip
        _wait_until(lambda: alive_workers() >= workers, f"{workers} Spark workers", started, logs)
        yield master


@contextlib.contextmanager
def connect_server(logs: Path) -> Iterator[str]:
    """A Spark Connect server (``local[2]``, Python workers on this interpreter); yields its
    ``sc://`` URL."""
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with _processes() as started:
        _start(
            [str(SPARK_HOME / "bin" / "spark-submit"), "--master", "local[2]",
             "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
             "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
             "--conf", "spark.ui.enabled=false",
             "--conf", f"spark.pyspark.python={sys.executable}",
             "spark-internal"],
            logs, "connect", started,
        )  # fmt: skip
        _wait_until(lambda: _listening(port), "the Spark Connect server", started, logs)
        yield f"sc://127.0.0.1:{port}"
