"""Data quality (issue 5): validation time against fit time, and drift's false-positive rate.

1. Validation vs fit. Generates 2M rows x 8 float64 columns of Parquet once under
   ``data/bench/quality_2m`` (and the same plus two pass-through columns, a string
   id and an int64, under ``quality_2m_passthrough``), then runs, each as its own
   process as a user runs them, ``normcore fit``, ``normcore apply`` (untimed) and
   ``normcore validate --source --report`` (row count, range conformity, nulls,
   moments, quantiles, pass-through checksums, Data Docs). Reports the median wall
   time and the peak RSS of each, and the ratio validate / fit (target: at most 3).
   Three cases: every column ``zscore`` (the default fit), a mix of methods with
   sketches (``robust``, ``quantile``), and ``zscore`` with the pass-through columns.
2. Drift false positives. Fits the project's sample distribution
   (:mod:`normcore.sample`) and runs ``measure_drift`` on 20 fresh samples of the
   same distribution (seeds 100-119) and on 5 price-shifted ones, with the default
   thresholds and with ``configs/local.yaml``'s; reports how many samples and
   which features were flagged.

Usage: ``python bench/bench_quality.py [--rows N] [--repeat R] [--skip-drift] [--skip-validation]``.
Writes ``bench/results/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
NORMCORE = [sys.executable, "-m", "normcore.cli"]
COLUMNS = 8
MIXED = [
    {"name": "f0", "method": "zscore"},
    {"name": "f1", "method": "zscore"},
    {"name": "f2", "method": "minmax"},
    {"name": "f3", "method": "decimal"},
    {"name": "f4", "method": "maxabs"},
    {"name": "f5", "method": "mean"},
    {"name": "f6", "method": "robust"},
    {"name": "f7", "method": "quantile"},
]


def _write_data(directory: Path, rows: int, passthrough: bool, files: int) -> None:
    rng = np.random.default_rng(42)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for index in range(files):
        size = bounds[index + 1] - bounds[index]
        columns = {f"f{c}": 10.0**c + rng.standard_normal(size) * (c + 1) for c in range(COLUMNS)}
        columns["f3"][rng.random(size) < 0.001] = np.nan
        if passthrough:
            columns["id"] = pa.array(np.arange(bounds[index], bounds[index + 1]).astype(str))
            columns["group"] = rng.integers(0, 100, size)
        pq.write_table(pa.table(columns), directory / f"part-{index:05d}.parquet", row_group_size=262_144)


def generate(directory: Path, rows: int, passthrough: bool, files: int = 4) -> None:
    """Deterministic features ``f0..f7`` (offsets, scales, a few NaN), with pass-through
    ``id`` (string) and ``group`` (int64) if asked; written by a child process, so that
    the data held here does not count in the measured processes' peak RSS (a forked
    child starts with its parent's)."""
    marker = directory / "_COMPLETE"
    if marker.exists() and marker.read_text() == f"{rows} {files} {passthrough}":
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    writer = multiprocessing.get_context("spawn").Process(
        target=_write_data, args=(directory, rows, passthrough, files)
    )
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise SystemExit(f"generating {directory} failed")
    marker.write_text(f"{rows} {files} {passthrough}")


def measure(argv: list[str], expect: int = 0) -> dict[str, float]:
    """Run ``argv``; wall seconds and peak RSS (MiB) of that process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != expect:
        raise SystemExit(f"{' '.join(argv)} failed: {process.stderr.read().decode()}")
    return {"seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024}


def validation_vs_fit(rows: int, repeat: int) -> dict:
    plain = ROOT / "data" / "bench" / f"quality_{rows // 1_000_000}m"
    wide = ROOT / "data" / "bench" / f"quality_{rows // 1_000_000}m_passthrough"
    generate(plain, rows, passthrough=False)
    generate(wide, rows, passthrough=True)
    work = ROOT / "data" / "bench" / "quality_out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {}
    cases = (("zscore", None, plain), ("mixed", MIXED, plain), ("zscore+passthrough", None, wide))
    for label, features, data in cases:
        artifact, output, report = work / f"{label}.json", work / f"{label}-normalized", work / f"{label}-report"
        selection = ["--features", ",".join(f"f{c}" for c in range(COLUMNS))]
        if features is not None:
            config = work / f"{label}.yaml"
            config.write_text(yaml.safe_dump({"features": features}))
            selection = ["--config", str(config)]
        validate_argv = [*NORMCORE, "validate", str(output), "--artifact", str(artifact), "--source", str(data)]
        fits, validations = [], []
        for attempt in range(repeat):
            # Sketches are randomized: every fit but the first goes to a scratch artifact,
            # so that the output stays the one the validated artifact made.
            target = artifact if attempt == 0 else work / f"{label}-scratch.json"
            fits.append(measure([*NORMCORE, "fit", str(data), "--artifact", str(target), *selection]))
            if attempt == 0:
                measure([*NORMCORE, "apply", str(data), "--artifact", str(artifact), "--output", str(output)])
            validations.append(measure([*validate_argv, "--report", str(report)]))
        fit = {
            "seconds": statistics.median(r["seconds"] for r in fits),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in fits),
        }
        validate = {
            "seconds": statistics.median(r["seconds"] for r in validations),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in validations),
        }
        kpi = json.loads((report / "validation_result.json").read_text())["meta"]["normcore"]
        results[label] = {
            "fit": fit,
            "validate": validate,
            "ratio": validate["seconds"] / fit["seconds"],
            "ratios": [v["seconds"] / f["seconds"] for f, v in zip(fits, validations, strict=True)],
            "evaluated_on": kpi["evaluated_on"],
            "input_range_conformity": kpi["input_range_conformity"],
        }
        print(
            f"  {label:<19} fit {fit['seconds']:6.1f} s ({fit['peak_rss_mib']:4.0f} MiB)   "
            f"validate {validate['seconds']:6.1f} s ({validate['peak_rss_mib']:4.0f} MiB)   "
            f"ratio {results[label]['ratio']:.2f}"
        )
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "columns": COLUMNS, "repeat": repeat, **results}


def drift_false_positives(rows: int, reference_rows: int) -> dict:
    """Drift verdicts on 20 fresh and 5 shifted samples, with the default thresholds and with
    ``configs/local.yaml``'s (which turns off the variance ratio of the Pareto feature)."""
    from normcore.api import fit
    from normcore.config import DriftConfig, build_job, read_config_file
    from normcore.io import open_input
    from normcore.quality.drift import measure_drift
    from normcore.sample import generate_sample

    work = ROOT / "data" / "bench" / "quality_drift"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    features = ["price:zscore", "rate:minmax", "count:decimal", "latency:robust", "constant:zscore"]
    artifact = fit(generate_sample(reference_rows, seed=7), features=",".join(features), sketch=True)
    settings = {
        "defaults": DriftConfig(),
        "local.yaml": build_job(read_config_file(ROOT / "configs" / "local.yaml"), "local.yaml").drift,
    }

    def flagged(table: pa.Table) -> dict[str, list[str]]:
        pq.write_table(table, work / "new.parquet")
        source = open_input(str(work / "new.parquet"))
        return {label: measure_drift(artifact, source, t, "artifact").drifted for label, t in settings.items()}

    fresh = [flagged(generate_sample(rows, seed=seed)) for seed in range(100, 120)]
    shifted = []
    for seed in range(200, 205):
        table = generate_sample(rows, seed=seed)
        price = table.column("price")
        moved = pa.compute.add(price, 0.5 * float(np.nanstd(price.to_numpy(zero_copy_only=False))))
        shifted.append(flagged(table.set_column(table.schema.get_field_index("price"), "price", moved)))
    shutil.rmtree(work, ignore_errors=True)
    result = {"reference_rows": reference_rows, "rows": rows}
    for label in settings:
        per_feature: dict[str, int] = {}
        for verdict in fresh:
            for name in verdict[label]:
                per_feature[name] = per_feature.get(name, 0) + 1
        result[label] = {
            "fresh_samples_flagged": sum(1 for verdict in fresh if verdict[label]),
            "fresh_flags_per_feature": per_feature,
            "shifted_samples_flagged_on_price": sum(1 for verdict in shifted if "price" in verdict[label]),
        }
        print(
            f"  drift ({label}), {rows:,} new vs {reference_rows:,} fitted rows: "
            f"{result[label]['fresh_samples_flagged']}/20 fresh samples flagged {per_feature or ''}; "
            f"{result[label]['shifted_samples_flagged_on_price']}/5 price-shifted samples flagged on price"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-drift", action="store_true")
    parser.add_argument("--skip-validation", action="store_true")
    args = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    report = {"machine": machine}
    if not args.skip_validation:
        print(f"{args.rows:,} rows x {COLUMNS} float64 columns; {machine}")
        report["validation"] = validation_vs_fit(args.rows, args.repeat)
    if not args.skip_drift:
        report["drift"] = [drift_false_positives(rows, 200_000) for rows in (10_000, 200_000)]
    out = ROOT / "bench" / "results" / "quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
