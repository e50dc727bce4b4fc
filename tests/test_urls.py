"""Inputs given as URLs on the local engine: ``file://`` URLs are local paths (and checked
like them), other schemes are read through pyarrow.fs or fsspec, and a URL that cannot be
opened is one ``error:`` line naming it."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import pytest

from normcore.artifact import load_artifact
from normcore.cli import main


def _features(path: Path) -> dict:
    return load_artifact(path).document["features"]


def test_file_urls_are_local_paths(sample_dir: Path, tmp_path: Path, capsys) -> None:
    """``run`` with a ``file://`` input, artifact and output gives what plain paths give."""
    by_path, by_url = tmp_path / "by-path.json", tmp_path / "by url.json"
    assert main(["fit", str(sample_dir), "--artifact", str(by_path)]) == 0
    output = tmp_path / "out"
    code = main(["run", sample_dir.as_uri(), "--artifact", by_url.as_uri(), "--output", output.as_uri()])
    assert code == 0
    assert _features(by_url) == _features(by_path)
    assert pq.read_metadata(next(output.glob("*.parquet"))).num_rows > 0
    assert f"artifact: {by_url.as_uri()}" in capsys.readouterr().out


def test_a_file_url_output_is_checked_against_the_input(sample_dir: Path, tmp_path: Path, capsys) -> None:
    """An output that is the input, written as a URL, is refused like the same path."""
    artifact = tmp_path / "a.json"
    assert main(["fit", str(sample_dir), "--artifact", str(artifact)]) == 0
    before = sorted(p.name for p in sample_dir.iterdir())
    code = main(["apply", str(sample_dir), "--artifact", str(artifact), "--output", sample_dir.as_uri()])
    assert code == 2
    assert f"--output '{sample_dir.as_uri()}' is input" in capsys.readouterr().err
    assert sorted(p.name for p in sample_dir.iterdir()) == before


def test_a_remote_url_is_read_through_its_file_system(sample_table, tmp_path: Path, capsys) -> None:
    """A directory on fsspec's in-memory file system: its data files are read (``_SUCCESS``
    left out), and the fit equals the fit of the same files on disk."""
    memory = fsspec.filesystem("memory")
    local = tmp_path / "local"
    local.mkdir()
    for index, part in enumerate((sample_table.slice(0, 2000), sample_table.slice(2000))):
        with memory.open(f"memory://normcore-test/input/part-{index}.parquet", "wb") as stream:
            pq.write_table(part, stream)
        pq.write_table(part, local / f"part-{index}.parquet")
    with memory.open("memory://normcore-test/input/_SUCCESS", "wb") as stream:
        stream.write(b"")
    try:
        remote, on_disk = tmp_path / "remote.json", tmp_path / "disk.json"
        assert main(["fit", "memory://normcore-test/input", "--artifact", str(remote)]) == 0
        assert main(["fit", str(local), "--artifact", str(on_disk)]) == 0
        assert _features(remote) == _features(on_disk)
        assert load_artifact(remote).rows == sample_table.num_rows
    finally:
        memory.rm("memory://normcore-test", recursive=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("foo://bucket/data", "Unrecognized filesystem type"),
        ("hdfs://127.0.0.1:9/data", "cannot open input 'hdfs://127.0.0.1:9/data'"),
        ("memory://normcore-test/nothing-here", "does not exist"),
        ("file://elsewhere/data", "names host 'elsewhere'"),
    ],
)
def test_an_unusable_url_is_one_error_line(url: str, reason: str, tmp_path: Path, capsys) -> None:
    artifact = tmp_path / "artifact.json"
    assert main(["fit", url, "--artifact", str(artifact)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and reason in err[0] and url in err[0], err
    assert not artifact.exists()
