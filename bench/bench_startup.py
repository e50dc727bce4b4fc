"""Start-up cost of normcore processes (issue 12): what a command pays before its first row.

Each probe is a whole process started from scratch, run ``--rounds`` times interleaved;
the table gives the median wall seconds and, beside it, the bare interpreter and the
imports normcore cannot do without (NumPy; pyarrow for commands that read data). The
``fit`` / ``apply`` probes run on a 1,000-row file, so their time is start-up, not work.
Two probes give the floor under a command that reads Parquet: NumPy + ``pyarrow.parquet``
(pyarrow imports NumPy itself), then with pydantic's first validation of a model too (the
config validator), both with ``OPENBLAS_NUM_THREADS=1`` as the ``normcore`` executable sets it.
``--peers-python`` adds ``import polars`` in that interpreter (``.venv-peers``): the one
start-up polars pays for a whole fit + apply (``bench/bench_local_peers.py``).
With ``--engines``, Beam and Spark fits of the same file run beside each engine's own bare
start (a one-element Beam pipeline on the FnApiRunner; a local SparkSession started and
stopped, and one that also runs a job of Python tasks, as a normcore fit does): the
difference is what normcore adds on top of the engine.

``--root DIR`` runs the probes against the normcore checkout in DIR (its package first on
``sys.path``, with this interpreter's packages), for before / after figures from a
``git worktree`` of an older commit.

Usage: ``python bench/bench_startup.py [--rounds R] [--root DIR] [--engines] [--peers-python PY]``
(``make bench-startup`` runs ``--engines``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent


BARE_BEAM = """
import apache_beam as beam
with beam.Pipeline(runner="FnApiRunner") as pipeline:
    pipeline | beam.Create([1.0]) | beam.Map(float)
"""
BARE_SPARK = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
spark.range(1).count()
spark.stop()
"""
#: The same session running one job of Python tasks (the Python workers every normcore
#: Spark fit starts), with this interpreter as the workers' Python, as normcore's session.
BARE_SPARK_PYTHON = """
import os, sys
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.parallelize([1.0, 2.0], 2).map(float).collect()
spark.stop()
"""
#: As the ``normcore`` executable sets it (``normcore.cli.run``), before NumPy loads OpenBLAS.
ONE_BLAS_THREAD = "import os; os.environ.setdefault('OPENBLAS_NUM_THREADS', '1'); "
#: NumPy, pyarrow.parquet and pydantic's first validation (which imports its schema builder),
#: plugins off as in ``normcore.cli.run``: what any command that reads Parquet and validates
#: a config with pydantic pays before its own code runs.
FIRST_PYDANTIC_MODEL = """os.environ.setdefault('PYDANTIC_DISABLE_PLUGINS', '__all__')
import numpy, pyarrow.parquet
from pydantic import BaseModel
class Probe(BaseModel):
    value: int = 1
Probe.model_validate({})
"""


def probes(work: Path, engines: bool, peers_python: str | None = None) -> dict[str, list[str]]:
    """Name -> argv of every probe (data and artifact under ``work``)."""
    data, artifact, output = work / "d.parquet", work / "a.json", work / "out"
    cli = [sys.executable, "-m", "normcore.cli"]
    quality = [str(output), "--artifact", str(artifact)]
    found = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import numpy": [sys.executable, "-c", "import numpy"],
        "import pyarrow": [sys.executable, "-c", "import pyarrow"],
        "import numpy, pyarrow.parquet (one BLAS thread)": [
            sys.executable,
            "-c",
            ONE_BLAS_THREAD + "import numpy, pyarrow.parquet",
        ],
        "the same + one pydantic model validated": [sys.executable, "-c", ONE_BLAS_THREAD + FIRST_PYDANTIC_MODEL],
        "import normcore": [sys.executable, "-c", "import normcore"],
        "normcore.Normalizer (load artifact)": [
            sys.executable,
            "-c",
            f"import normcore; normcore.Normalizer.from_artifact({str(artifact)!r})",
        ],
        "normcore inspect": [*cli, "inspect", str(artifact)],
        "normcore fit (1k rows)": [*cli, "fit", str(data), "--artifact", str(work / "b.json")],
        "normcore apply (1k rows)": [*cli, "apply", str(data), "--artifact", str(artifact), "--output", str(output)],
        "normcore validate (1k rows)": [*cli, "validate", *quality, "--source", str(data)],
        "normcore drift (1k rows)": [*cli, "drift", str(data), "--artifact", str(artifact)],
    }
    if peers_python is not None:
        found["import polars (peers' Python)"] = [peers_python, "-c", "import polars"]
    if engines:
        found |= {
            "bare Beam pipeline (FnApiRunner)": [sys.executable, "-c", BARE_BEAM],
            "normcore fit --engine beam (1k rows)": [
                *cli,
                "fit",
                str(data),
                "--artifact",
                str(work / "c.json"),
                "--engine",
                "beam",
            ],
            "bare SparkSession start + stop": [sys.executable, "-c", BARE_SPARK],
            "bare SparkSession + one job of Python tasks": [sys.executable, "-c", BARE_SPARK_PYTHON],
            "normcore fit --engine spark (1k rows)": [
                *cli,
                "fit",
                str(data),
                "--artifact",
                str(work / "e.json"),
                "--engine",
                "spark",
            ],
        }
    return found


def run(argv: list[str], root: Path) -> float:
    """Wall seconds of one process (cwd ``root``, so its normcore is imported)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed:\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--root", type=Path, default=ROOT, help="normcore checkout to measure")
    parser.add_argument("--engines", action="store_true", help="also Beam and Spark, beside their bare start")
    parser.add_argument("--peers-python", help="a Python with polars (.venv-peers): also time its import")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(0)
        pq.write_table(pa.table({f"c{i}": rng.normal(size=1000) for i in range(8)}), work / "d.parquet")
        commands = probes(work, args.engines, args.peers_python)
        cli = [sys.executable, "-m", "normcore.cli"]
        data, artifact = str(work / "d.parquet"), str(work / "a.json")
        subprocess.run([*cli, "fit", data, "--artifact", artifact], cwd=root, check=True, stdout=subprocess.DEVNULL)
        apply = [*cli, "apply", data, "--artifact", artifact, "--output", str(work / "out")]
        subprocess.run(apply, cwd=root, check=True, stdout=subprocess.DEVNULL)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                if name.startswith("normcore fit"):
                    (work / command[command.index("--artifact") + 1]).unlink(missing_ok=True)
                if name.startswith("normcore apply"):
                    (work / "applied").mkdir(exist_ok=True)
                    command[command.index("--output") + 1] = str(work / "applied" / f"run{len(times[name])}")
                times[name].append(run(command, root))
    print(f"normcore at {root}; median of {args.rounds} interleaved rounds, whole processes")
    print()
    print("| process | median wall s | min s |")
    print("|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} |")


if __name__ == "__main__":
    main()
