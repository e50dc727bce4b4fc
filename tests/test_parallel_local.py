"""The parallel local engine: the same artifact bit for bit and the same rows whatever the
number of workers, output files in input order, and memory bounded by the batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore import io
from normcore.apply import BatchNormalizer
from normcore.artifact import load_artifact
from normcore.cli import main
from normcore.engines import local
from normcore.io import Fragment
from normcore.sample import generate_sample

FEATURES = "price,rate:minmax,count:decimal,latency:robust,constant"
#: Moments, a sketch-based quantile transform and a robust one (sketches merge by fragment too).
FIT_FEATURES = "price,rate:quantile,count:decimal,latency:robust,constant"


@pytest.fixture()
def many_fragments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample as 3 files of several row groups each, every row group a fragment."""
    monkeypatch.setattr(io, "FRAGMENT_BYTES", 1)
    monkeypatch.setattr(local, "FRAGMENT_BYTES", 1)
    table = generate_sample(9_000, seed=21)
    directory = tmp_path / "input"
    directory.mkdir()
    for index, start in enumerate((0, 2_500, 6_100)):
        stop = (2_500, 6_100, 9_000)[index]
        pq.write_table(table.slice(start, stop - start), directory / f"part-{index}.parquet", row_group_size=700)
    return directory


def _document(path: Path) -> dict:
    document = load_artifact(path).document
    return {k: v for k, v in document.items() if k not in ("created_at", "checksum")}


@pytest.mark.parametrize("extra", [[], ["--key", "category"], ["--sketch"]])
def test_the_artifact_is_bit_identical_whatever_the_worker_count(
    many_fragments: Path, tmp_path: Path, extra: list[str]
) -> None:
    documents = []
    for workers in (1, 2, 3, 8):
        artifact = tmp_path / f"artifact-{workers}.json"
        arguments = ["fit", str(many_fragments), "--features", FIT_FEATURES, "--artifact", str(artifact)]
        assert main([*arguments, "--workers", str(workers), *extra]) == 0
        documents.append(json.dumps(_document(artifact), sort_keys=True))
    assert len(set(documents)) == 1


def _read_in_name_order(directory: Path) -> pa.Table:
    files = sorted(directory.glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_outputs_hold_the_input_rows_in_order_and_agree_across_worker_counts(
    many_fragments: Path, tmp_path: Path, workers: int
) -> None:
    """Files sorted by name hold every row in input order; one file run per worker; the
    values equal BatchNormalizer's on the whole table."""
    artifact = tmp_path / "artifact.json"
    fit = ["fit", str(many_fragments), "--features", FEATURES, "--artifact", str(artifact)]
    assert main([*fit, "--workers", "1"]) == 0
    output = tmp_path / f"out-{workers}"
    command = ["apply", str(many_fragments), "--artifact", str(artifact), "--output", str(output)]
    assert main([*command, "--workers", str(workers)]) == 0
    runs = {f.name.split("-")[1] for f in output.glob("part-*.parquet")}
    assert runs == {f"{index:05d}" for index in range(workers)}
    written = _read_in_name_order(output)
    original = pa.concat_tables([pq.read_table(f) for f in sorted(many_fragments.glob("*.parquet"))])
    expected, _ = BatchNormalizer(load_artifact(artifact)).transform_batch(original.combine_chunks().to_batches()[0])
    assert written.num_rows == original.num_rows
    for name in original.column_names:
        left = written.column(name).to_numpy(zero_copy_only=False)
        right = expected.column(name).to_numpy(zero_copy_only=False)
        if left.dtype.kind == "f":
            assert np.array_equal(left, right, equal_nan=True), name
        else:
            assert written.column(name).combine_chunks().equals(expected.column(name)), name


def test_contiguous_runs_keep_order_and_balance_rows() -> None:
    fragments = [Fragment(f"f{i}", (0,), 10, rows) for i, rows in enumerate([5, 5, 5, 5, 40, 5, 5])]
    runs = local.contiguous_runs(fragments, 2)
    assert [f for run in runs for f in run] == fragments
    assert [sum(f.rows for f in run) for run in runs] == [20, 50]
    assert local.contiguous_runs(fragments, 100) == [[f] for f in fragments]
    assert local.contiguous_runs([], 4) == [[]]


def _peak_rss_mib(arguments: list[str]) -> float:
    process = subprocess.Popen(
        [sys.executable, "-m", "normcore.cli", *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read().decode()
    return usage.ru_maxrss / 1024


def test_memory_grows_with_the_batch_size_not_with_the_data(tmp_path: Path) -> None:
    """Peak RSS of fit and apply on 2 workers over 1.5M and 3M rows x 8 float64 columns
    (96 and 192 MiB of values): doubling the data adds less than a quarter of the extra
    data to the peak (a fit or apply holding its input would add all of it)."""
    rng = np.random.default_rng(4)
    peaks = {}
    for rows in (1_500_000, 3_000_000):
        data = tmp_path / f"in-{rows}"
        data.mkdir()
        for index in range(rows // 750_000):
            columns = {f"f{c}": rng.standard_normal(750_000) + c for c in range(8)}
            pq.write_table(pa.table(columns), data / f"part-{index}.parquet", row_group_size=150_000)
        artifact = tmp_path / f"artifact-{rows}.json"
        options = ["--workers", "2", "--batch-size", "32768"]
        fit = _peak_rss_mib(["fit", str(data), "--artifact", str(artifact), *options])
        out = ["apply", str(data), "--artifact", str(artifact), "--output", str(tmp_path / f"out-{rows}")]
        peaks[rows] = (fit, _peak_rss_mib([*out, *options]))
    extra_data_mib = 1_500_000 * 8 * 8 / 2**20
    for small, large in zip(peaks[1_500_000], peaks[3_000_000], strict=True):
        assert large - small < extra_data_mib / 4, peaks


def test_drift_is_the_same_whatever_the_worker_count(many_fragments: Path, tmp_path: Path) -> None:
    artifact = tmp_path / "artifact.json"
    assert main(["fit", str(many_fragments), "--features", FIT_FEATURES, "--artifact", str(artifact), "--sketch"]) == 0
    reports = []
    for workers in (1, 2):
        report = tmp_path / f"drift-{workers}"
        code = main(["drift", str(many_fragments), "--artifact", str(artifact), "--report", str(report),
                     "--workers", str(workers)])  # fmt: skip
        assert code == 0
        document = json.loads((report / "drift.json").read_text())
        reports.append(json.dumps({k: v for k, v in document.items() if k != "created_at"}, sort_keys=True))
    assert reports[0] == reports[1]


def test_a_bad_worker_count_names_the_option(many_fragments: Path, tmp_path: Path, capsys) -> None:
    assert main(["fit", str(many_fragments), "--artifact", str(tmp_path / "a.json"), "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: option --workers: 0 is not a number of threads (at least 1)"
