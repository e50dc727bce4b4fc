"""Benchmark of the Beam engine: fit + apply + write, side by side with tft and MLTransform.

    python bench/bench_beam.py                       # normcore only (make bench-beam)
    python bench/bench_beam.py --baselines           # + tft and MLTransform (make bench-tft)

Data: ``--rows`` rows (default 2,000,000) of 8 float64 columns and a string ``id``
passed through, in ``--files`` Parquet files under ``bench/results/beam/data``.

normcore runs as it would for a user, one process per run, timed from process start to
exit: ``python -m pipelines.beam.normalize run DATA --artifact ... --output ...`` on the
local DirectRunner (in memory, and with ``--direct_num_workers=2
--direct_running_mode=multi_processing``). The baselines run in the optional
``.venv-tft`` interpreter (``bench/tft_baseline.py``): TensorFlow Transform's
``AnalyzeAndTransformDataset(scale_to_z_score)`` on Arrow record batches, and Beam's
``MLTransform(ScaleToZScore)`` on ``--mltransform-rows`` rows (it manages a few thousand
rows per second). For the baselines both the whole process and the pipeline alone are
timed; ratios use normcore's best whole process (default in-memory runner) against the
baselines' pipeline time, the comparison least favourable to normcore.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
FEATURES = [f"f{i}" for i in range(8)]


def make_data(directory: Path, rows: int, files: int) -> Path:
    """Write (once) ``rows`` rows of 8 float64 columns and a string id as ``files`` Parquet files."""
    marker = directory / "_bench.json"
    spec = {"rows": rows, "files": files}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(42)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for index in range(files):
        n = int(bounds[index + 1] - bounds[index])
        columns = {"id": pa.array([f"id-{i:010d}" for i in range(bounds[index], bounds[index + 1])])}
        for j, name in enumerate(FEATURES):
            columns[name] = pa.array(rng.normal(10.0**j, 1.0 + j, n))
        pq.write_table(pa.table(columns), directory / f"part-{index:05d}.parquet")
    marker.write_text(json.dumps(spec))
    return directory


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of ``command`` (a whole process) and its stdout; fails loudly."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def check_output(directory: Path, rows: int) -> None:
    """Every row written, features standardized, id passed through."""
    table = ds.dataset(directory).to_table(columns=["id", "f3"])
    if table.num_rows != rows:
        sys.exit(f"{directory}: {table.num_rows} rows, expected {rows}")
    values = table.column("f3").to_numpy()
    if abs(values.mean()) > 1e-9 or abs(values.std() - 1.0) > 1e-9:
        sys.exit(f"{directory}: f3 is not standardized (mean {values.mean()}, std {values.std()})")


def run_normcore(data: Path, work: Path, rows: int, flags: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        output = work / "normcore_out"
        seconds, _ = timed([
            sys.executable, "-m", "pipelines.beam.normalize", "run", str(data),
            "--artifact", str(work / "artifact.json"), "--output", str(output), "--overwrite", *flags,
        ])
        check_output(output, rows)
        times.append(seconds)
    return times


def run_baseline(python: str, name: str, data: Path, work: Path, extra: list[str]) -> dict:
    output = work / f"{name}_out"
    if output.exists():
        for part in output.glob("*.parquet"):
            part.unlink()
    seconds, stdout = timed([python, str(ROOT / "bench" / "tft_baseline.py"), name, str(data), str(output), *extra])
    result = json.loads(stdout.strip().splitlines()[-1])
    result["process_seconds"] = seconds
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="in-memory normcore runs (best and all are reported)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "results" / "beam")
    parser.add_argument("--baselines", action="store_true", help="also run tft and MLTransform (needs .venv-tft)")
    parser.add_argument("--tft-python", default=str(ROOT / ".venv-tft" / "bin" / "python"))
    parser.add_argument("--mltransform-rows", type=int, default=100_000)
    args = parser.parse_args()

    work = args.workdir
    data = make_data(work / "data", args.rows, args.files)
    results: dict = {"rows": args.rows, "files": args.files, "machine": machine(),
                     "load_average_at_start": os.getloadavg()[0]}
    modes = {"in_memory": [], "multi_processing": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]}
    for mode, flags in modes.items():
        times = run_normcore(data, work, args.rows, flags, args.repeat if mode == "in_memory" else 1)
        results[f"normcore_{mode}"] = {"process_seconds": times, "rows_per_second": args.rows / min(times)}
        print(f"normcore {mode:17s} best {min(times):6.2f} s  {args.rows / min(times):10,.0f} rows/s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    best = results["normcore_in_memory"]["rows_per_second"]  # the default local runner

    if args.baselines:
        if not Path(args.tft_python).exists():
            sys.exit(f"{args.tft_python} not found: run `make bench-tft` to create .venv-tft")
        for name, extra in (("tft", []), ("mltransform", ["--rows", str(args.mltransform_rows)])):
            result = run_baseline(args.tft_python, name, data, work, extra)
            result["rows_per_second_pipeline"] = result["rows"] / result["pipeline_seconds"]
            result["rows_per_second_process"] = result["rows"] / result["process_seconds"]
            result["normcore_speedup"] = best / result["rows_per_second_pipeline"]
            results[name] = result
            print(f"{name:26s} {result['rows']:,} rows: pipeline {result['pipeline_seconds']:6.2f} s "
                  f"{result['rows_per_second_pipeline']:10,.0f} rows/s; process {result['process_seconds']:6.2f} s "
                  f"{result['rows_per_second_process']:10,.0f} rows/s; normcore x{result['normcore_speedup']:.1f}",
                  flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
