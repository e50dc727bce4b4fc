"""Nothing the user owns is destroyed or changed: every data-loss path found, as a test.

Each case records the digest of every file the user had, runs the command, and checks the
command exits 2 with one ``error:`` line and the files are unchanged. Races, concurrent
runs and a ``kill -9`` run real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.cli import main

NORMCORE = [sys.executable, "-m", "normcore.cli"]


def _digests(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file under ``root`` (directories as ``dir``)."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _exit_2(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture()
def raw(tmp_path: Path, sample_table: pa.Table) -> Path:
    """A user's raw dataset (a directory of Parquet files) and a fitted artifact beside it."""
    directory = tmp_path / "raw"
    directory.mkdir()
    for index, part in enumerate(np.array_split(np.arange(sample_table.num_rows), 3)):
        pq.write_table(sample_table.take(pa.array(part)), directory / f"part-{index}.parquet")
    assert main(["fit", str(directory), "--artifact", str(tmp_path / "artifact.json")]) == 0
    return directory


LOSS_CASES = {
    "output is the input": (["apply", "{raw}", "--artifact", "{art}", "--output", "{raw}", "--overwrite"], "is"),
    "output contains the input": (
        ["apply", "{raw}", "--artifact", "{art}", "--output", "{root}", "--overwrite"],
        "contains input",
    ),
    "output inside the input": (["apply", "{raw}", "--artifact", "{art}", "--output", "{raw}/norm"], "is inside"),
    "artifact is the input file": (["fit", "{raw}/part-0.parquet", "--artifact", "{raw}/part-0.parquet"], "is"),
    "artifact inside the input": (["fit", "{raw}", "--artifact", "{raw}/stats.json"], "is inside"),
    "artifact is the config": (["fit", "{raw}", "--config", "{root}/job.yaml", "--artifact", "{root}/job.yaml"], "is"),
    "artifact inside the output": (
        ["run", "{raw}", "--artifact", "{root}/out/stats.json", "--output", "{root}/out"],
        "contains --artifact",
    ),
    "report is the output": (
        ["run", "{raw}", "--artifact", "{root}/a2.json", "--output", "{root}/out", "--report", "{root}/out"],
        "is",
    ),
    "output through a link to the input": (
        ["apply", "{raw}", "--artifact", "{art}", "--output", "{root}/link", "--overwrite"],
        "is",
    ),
    "apply's output is its artifact's folder": (
        ["apply", "{raw}", "--artifact", "{root}/arts/artifact.json", "--output", "{root}/arts", "--overwrite"],
        "contains --artifact",
    ),
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_a_write_onto_what_is_read_is_refused(raw: Path, capsys, case: str) -> None:
    root = raw.parent
    (root / "job.yaml").write_text("method: zscore\n")
    (root / "link").symlink_to(raw, target_is_directory=True)
    (root / "arts").mkdir()
    (root / "arts" / "artifact.json").write_bytes((root / "artifact.json").read_bytes())
    argv, relation = LOSS_CASES[case]
    before = _digests(root)
    line = _exit_2([a.format(raw=raw, root=root, art=root / "artifact.json") for a in argv], capsys)
    assert f"' {relation} " in line and "normcore never writes where it reads" in line
    assert _digests(root) == before


def test_overwrite_replaces_only_normcore_output(raw: Path, capsys) -> None:
    root = raw.parent
    art, out = str(root / "artifact.json"), str(root / "out")
    assert main(["apply", str(raw), "--artifact", art, "--output", out]) == 0
    first = _digests(root / "out")
    assert main(["apply", str(raw), "--artifact", art, "--output", out, "--overwrite"]) == 0
    assert set(_digests(root / "out")) == set(first)
    photos = root / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    before = _digests(root)
    line = _exit_2(["apply", str(raw), "--artifact", art, "--output", str(photos), "--overwrite"], capsys)
    assert "was not written by normcore" in line
    (root / "notes.txt").write_text("mine")
    line = _exit_2(["fit", str(raw), "--artifact", str(root / "notes.txt")], capsys)
    assert "was not written by normcore" in line
    assert _digests(root) == {**before, "notes.txt": _digests(root)["notes.txt"]}


def test_artifact_path_that_is_a_directory_fails_before_the_fit(raw: Path, capsys, monkeypatch) -> None:
    import normcore.engines.local as local

    def never(*args, **kwargs):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(local, "fit", never)
    (raw.parent / "folder").mkdir()
    line = _exit_2(["fit", str(raw), "--artifact", str(raw.parent / "folder")], capsys)
    assert "is a directory; expected a file path" in line


def test_unwritable_location_fails_before_the_fit(raw: Path, capsys, monkeypatch) -> None:
    import normcore.engines.local as local

    def never(*args, **kwargs):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(local, "fit", never)
    (raw.parent / "file").write_text("x")
    line = _exit_2(["fit", str(raw), "--artifact", str(raw.parent / "file" / "a.json")], capsys)
    assert "cannot write" in line or "is not a directory" in line


def test_a_url_is_not_written_as_a_local_folder(raw: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(raw.parent)
    line = _exit_2(["fit", str(raw), "--artifact", "s3://bucket/stats.json"], capsys)
    assert "'s3://bucket/stats.json' is a URL" in line
    assert not (raw.parent / "s3:").exists()


# ----------------------------------------------------------------- real processes


def _slow_apply(raw: Path, output: Path, *extra: str) -> subprocess.Popen:
    """An apply that takes a few seconds (tiny batches over many rows)."""
    return subprocess.Popen(
        [*NORMCORE, "apply", str(raw), "--artifact", str(raw.parent / "artifact.json"), "--output", str(output),
         "--batch-size", "8", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _staging(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f".{output.name}.normcore-staging-*"))


ROWS = 300_000


@pytest.fixture()
def big_raw(tmp_path: Path) -> Path:
    directory = tmp_path / "raw"
    directory.mkdir()
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"x": rng.normal(size=ROWS), "y": rng.normal(size=ROWS)}), directory / "p.parquet")
    assert main(["fit", str(directory), "--artifact", str(tmp_path / "artifact.json")]) == 0
    return directory


def test_a_target_that_appears_meanwhile_is_kept(big_raw: Path) -> None:
    output = big_raw.parent / "out"
    process = _slow_apply(big_raw, output)
    _wait_for(lambda: _staging(output), process)
    output.mkdir()
    (output / "theirs.txt").write_text("written by someone else meanwhile")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert err.strip().splitlines() == [
        f"error: option --output: something appeared at '{output}' while normcore was running; "
        "it is kept and nothing was written"
    ]
    assert sorted(p.name for p in output.iterdir()) == ["theirs.txt"]
    assert not _staging(output) and not list(big_raw.parent.glob(".out.normcore-lock"))


def test_concurrent_runs_on_one_target_serialize_and_the_loser_exits_2(big_raw: Path) -> None:
    output = big_raw.parent / "out"
    first = _slow_apply(big_raw, output)
    _wait_for(lambda: _staging(output), first)
    second = _slow_apply(big_raw, output)
    _, second_err = second.communicate(timeout=120)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.returncode == 2
    assert "another normcore command is writing" in second_err and len(second_err.strip().splitlines()) == 1
    assert pq.read_table(output).num_rows == ROWS
    assert not _staging(output)


def test_kill_9_mid_apply_then_a_rerun_leaves_nothing_behind(big_raw: Path) -> None:
    output = big_raw.parent / "out"
    process = _slow_apply(big_raw, output)
    _wait_for(lambda: _staging(output) and any(_staging(output)[0].iterdir()), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _staging(output), "the killed run left its staging"
    assert not output.exists()
    rerun = _slow_apply(big_raw, output)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert sorted(p.name for p in big_raw.parent.iterdir()) == ["artifact.json", "out", "raw"]
    assert pq.read_table(output).num_rows == ROWS


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_honour_the_umask(big_raw: Path, umask: int) -> None:
    root = big_raw.parent
    command = [*NORMCORE, "run", str(big_raw), "--artifact", str(root / "a.json"), "--output", str(root / "out")]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=lambda: os.umask(umask), check=False)
    assert done.returncode == 0, done.stderr
    written = [root / "a.json", root / "out", *(root / "out").iterdir(), root / "out-validation"]
    for path in written:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~umask, (path, oct(mode))


# ----------------------------------------------------------------- OS errors


def _subprocess_exit_2(argv: list[str], **kwargs) -> str:
    done = subprocess.run([*NORMCORE, *argv], capture_output=True, text=True, check=False, **kwargs)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture()
def small_mount(tmp_path: Path):
    """A 256 KiB tmpfs mounted by the test (skipped where mounting is not permitted)."""
    point = tmp_path / "mount"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_disk_is_one_line_and_leaves_nothing(big_raw: Path, small_mount: Path) -> None:
    line = _subprocess_exit_2(
        ["apply", str(big_raw), "--artifact", str(big_raw.parent / "artifact.json"), "--output",
         str(small_mount / "out")]
    )  # fmt: skip
    assert line == f"error: cannot write --output '{small_mount / 'out'}': No space left on device"
    assert list(small_mount.iterdir()) == []


def test_a_busy_mount_point_is_one_line_and_kept(big_raw: Path, small_mount: Path) -> None:
    # A normcore output directory that is a mount point: replacing it means renaming it.
    (small_mount / "_normcore.json").write_text("{}")
    (small_mount / "part-00000.parquet").write_bytes(b"previous output")
    before = _digests(small_mount)
    line = _subprocess_exit_2(
        ["apply", str(big_raw), "--artifact", str(big_raw.parent / "artifact.json"), "--output", str(small_mount),
         "--overwrite"]
    )  # fmt: skip
    assert line.startswith(f"error: --output: cannot write '{small_mount}': ") and "busy" in line.lower()
    assert _digests(small_mount) == before
    assert not _staging(small_mount)


def _without_permission_override() -> list[str]:
    """A command prefix under which permission bits apply (root drops CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores permission bits and setpriv (util-linux) is missing to drop that")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_permission_denied_is_one_line(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0]}), tmp_path / "data.parquet")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    command = [*_without_permission_override(), *NORMCORE, "fit", str(tmp_path / "data.parquet"), "--artifact",
               str(locked / "a.json")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: --artifact: cannot write '{locked / 'a.json'}': Permission denied"
    ]
    assert list(locked.iterdir()) == []


# ----------------------------------------------------------------- integrity


def test_a_corrupted_page_of_a_written_file_is_detected(raw: Path, capsys) -> None:
    root = raw.parent
    assert main(["apply", str(raw), "--artifact", str(root / "artifact.json"), "--output", str(root / "out")]) == 0
    part = next((root / "out").glob("part-*.parquet"))
    metadata = pq.ParquetFile(part).metadata.row_group(0).column(2)  # price: float64 values
    content = bytearray(part.read_bytes())
    middle = metadata.data_page_offset + metadata.total_compressed_size // 2
    content[middle] ^= 0x01
    part.write_bytes(bytes(content))
    line = _exit_2(["fit", str(root / "out"), "--artifact", str(root / "again.json")], capsys)
    assert "cannot read input" in line and "CRC" in line


def test_two_fits_of_the_same_files_give_identical_artifacts(raw: Path) -> None:
    root = raw.parent
    features = "price:robust,rate:quantile,latency:quantile,count"
    documents = []
    for name in ("one.json", "two.json"):
        assert main(["fit", str(raw), "--artifact", str(root / name), "--features", features, "--sketch",
                     "--batch-size", "700"]) == 0  # fmt: skip
        document = json.loads((root / name).read_text())
        documents.append({k: v for k, v in document.items() if k not in ("created_at", "checksum")})
    assert documents[0]["features"]["latency"]["stats"]["quantiles"]["compactions"] > 0
    assert documents[0] == documents[1]
