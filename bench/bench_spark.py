"""Benchmark of the Spark engine: fit + apply + write, side by side with MLlib and native SQL.

    python bench/bench_spark.py            # make bench-spark

Data: ``--rows`` rows (default 2,000,000) of 8 float64 columns in ``--files`` Parquet
files under ``bench/results/spark/data`` (written once). One ``local[2]`` session runs
every contender (session start excluded), one warm-up each, then ``--rounds`` rounds in
which the contenders take turns; best and median are reported.

Contenders, each reading the Parquet files and writing Parquet:

* normcore: ``pipelines.spark.engine.fit`` then ``apply`` (zscore on the 8 columns),
  as ``normcore run --engine spark`` runs them without the validation step;
* MLlib: ``VectorAssembler`` + ``StandardScaler(withMean, withStd)`` fit, transform,
  write the scaled vectors;
* native SQL: ``avg`` / ``stddev_pop`` of each column in one aggregate, then column
  expressions ``(x - mean) / std``, write.

Fit alone: normcore's fit against one native aggregate (``avg`` / ``var_pop`` / ``min``
/ ``max`` of every column), and the same fit fed by a DataFrame through ``mapInArrow``
(``pipelines.spark.stats.compute_stats``). Precision: the variance of ``1e9 + N(0, 1)``
(``--precision-rows`` rows) from Spark's ``var_pop`` and from normcore, against an exact
rational reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from normcore.config import build_job  # noqa: E402
from normcore.io import open_input  # noqa: E402
from normcore.plan import resolve_plan  # noqa: E402

FEATURES = [f"f{i}" for i in range(8)]


def make_data(directory: Path, rows: int, files: int) -> Path:
    """Write (once) ``rows`` rows of 8 float64 columns as ``files`` Parquet files."""
    marker = directory / "_bench.json"
    spec = {"rows": rows, "files": files}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(42)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for index in range(files):
        n = int(bounds[index + 1] - bounds[index])
        table = pa.table({name: rng.normal(10.0 * j, 1.0 + j, n) for j, name in enumerate(FEATURES)})
        pq.write_table(table, directory / f"part-{index:05d}.parquet")
    marker.write_text(json.dumps(spec))
    return directory


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def contenders(spark, data: Path, scratch: Path) -> dict[str, Callable[[], None]]:
    """The timed pipelines, each a no-argument function."""
    from pyspark.ml.feature import StandardScaler, VectorAssembler
    from pyspark.sql import functions as F

    from pipelines.spark import engine
    from pipelines.spark.stats import compute_stats

    job = build_job({"engine": "spark", "features": [{"name": c} for c in FEATURES]}, "bench")

    def normcore_fit():
        source = open_input(str(data))
        return engine.fit(job, resolve_plan(job, source.schema, source.path), source)

    def normcore_run():
        artifact = normcore_fit()
        output = _fresh(scratch / "normcore")
        output.mkdir()
        engine.apply(job, artifact, open_input(str(data)), output)

    def normcore_fit_dataframe():
        source = open_input(str(data))
        plan = resolve_plan(job, source.schema, source.path)
        compute_stats(spark.read.parquet(str(data)), plan.requests(), plan.key)

    def mllib_run():
        frame = VectorAssembler(inputCols=FEATURES, outputCol="features").transform(spark.read.parquet(str(data)))
        model = StandardScaler(inputCol="features", outputCol="scaled", withMean=True, withStd=True).fit(frame)
        model.transform(frame).select("scaled").write.parquet(str(_fresh(scratch / "mllib")))

    def native_aggregate():
        aggregates = []
        for name in FEATURES:
            aggregates += [F.avg(name), F.var_pop(name), F.min(name), F.max(name)]
        return spark.read.parquet(str(data)).agg(*aggregates).first()

    def native_run():
        frame = spark.read.parquet(str(data))
        moments = frame.agg(
            *[F.avg(c).alias(f"m_{c}") for c in FEATURES], *[F.stddev_pop(c).alias(f"s_{c}") for c in FEATURES]
        ).first()
        normalized = frame.select(*[((F.col(c) - moments[f"m_{c}"]) / moments[f"s_{c}"]).alias(c) for c in FEATURES])
        normalized.write.parquet(str(_fresh(scratch / "native")))

    return {
        "normcore fit + apply + write": normcore_run,
        "MLlib VectorAssembler + StandardScaler + write": mllib_run,
        "native SQL aggregate + column expressions + write": native_run,
        "normcore fit (Arrow reads per task)": normcore_fit,
        "normcore fit of a DataFrame (mapInArrow)": normcore_fit_dataframe,
        "native aggregate avg/var_pop/min/max": native_aggregate,
    }


def exact_variance(values: np.ndarray) -> float:
    """Population variance of ``values`` computed exactly, rounded once.

    Every value must lie in one binade ``[2**e, 2**(e + 1))``: they are then integer
    multiples of the same ulp, and the sums run on Python integers.
    """
    exponents = np.frexp(values)[1]
    if exponents.min() != exponents.max():
        raise ValueError("exact_variance needs values of one binade")
    shift = 53 - int(exponents[0])
    integers = (values * 2.0**shift).astype(np.int64)  # exact: 53-bit mantissas
    base = int(integers[0])
    deviations = [int(v) - base for v in integers]
    total = sum(deviations)
    squares = sum(d * d for d in deviations)
    n = len(deviations)
    return float(Fraction(n * squares - total * total, n * n * 4**shift))


def precision(spark, scratch: Path, rows: int, files: int) -> dict[str, float]:
    """Relative error of the variance of ``1e9 + N(0, 1)``: Spark's var_pop and normcore."""
    from pyspark.sql import functions as F

    from pipelines.spark import engine

    values = 1e9 + np.random.default_rng(9).normal(0.0, 1.0, rows)
    path = _fresh(scratch / "offset")
    path.mkdir()
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for index in range(files):
        pq.write_table(pa.table({"x": values[bounds[index] : bounds[index + 1]]}), path / f"part-{index}.parquet")
    exact = exact_variance(values)
    spark_var = spark.read.parquet(str(path)).agg(F.var_pop("x")).first()[0]
    job = build_job({"engine": "spark", "features": [{"name": "x"}]}, "bench")
    source = open_input(str(path))
    ours = engine.fit(job, resolve_plan(job, source.schema, source.path), source).feature("x")["stats"]["var"]
    return {"spark_var_pop": abs(spark_var - exact) / exact, "normcore": abs(ours - exact) / exact}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision-rows", type=int, default=2_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results" / "spark"))
    args = parser.parse_args(argv)

    results_dir = Path(args.results)
    data = make_data(results_dir / "data", args.rows, args.files)
    scratch = results_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)

    from pipelines.spark.session import get_session

    started = time.perf_counter()
    spark = get_session(args.master, {"spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - started

    runs = contenders(spark, data, scratch)
    for run in runs.values():  # warm-up: JIT, Python workers
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    errors = precision(spark, scratch, args.precision_rows, args.files)
    spark.stop()

    best = {name: min(values) for name, values in times.items()}
    report = {
        "rows": args.rows,
        "files": args.files,
        "master": args.master,
        "session_start_s": session_seconds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
        "seconds": times,
        "precision_relative_error": errors,
    }
    (results_dir / "bench_spark.json").write_text(json.dumps(report, indent=2))

    print(f"{args.rows:,} rows x {len(FEATURES)} float64 columns, {args.files} Parquet files, master {args.master}")
    print(f"session start {session_seconds:.1f} s (excluded); best and median of {args.rounds} rounds")
    print("| contender | best | median | rows/s (best) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.2f} s | {statistics.median(values):.2f} s | {args.rows / min(values):,.0f} |")
    ours = best["normcore fit + apply + write"]
    print(f"normcore vs MLlib: {best['MLlib VectorAssembler + StandardScaler + write'] / ours:.2f}x faster")
    print(f"normcore vs native SQL: {best['native SQL aggregate + column expressions + write'] / ours:.2f}x faster")
    fit = best["normcore fit (Arrow reads per task)"]
    print(f"normcore fit vs one native aggregate: {best['native aggregate avg/var_pop/min/max'] / fit:.2f}x faster")
    print(
        f"variance of 1e9 + N(0, 1), {args.precision_rows:,} rows, relative error: "
        f"Spark var_pop {errors['spark_var_pop']:.1e}, normcore {errors['normcore']:.1e}"
    )
    print(f"load average {os.getloadavg()[0]:.1f}; raw figures: {results_dir / 'bench_spark.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
