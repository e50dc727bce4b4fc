"""Bad input to validate / drift / report: exit 2, one line ``error: ...``, nothing written."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from quality.quality_support import quality_table, write_config


@pytest.fixture()
def workspace(fitted, tmp_path: Path) -> Path:
    """An empty directory plus: a file, a non-empty non-report directory, raw data
    without ``score``, raw data without rows, and a config with a misspelt key."""
    table = quality_table(200, seed=3)
    pq.write_table(table.drop_columns(["score"]), tmp_path / "no_score.parquet")
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    (tmp_path / "a_file.txt").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    (tmp_path / "typo.yaml").write_text("validation:\n  mostyl: 0.9\n")
    write_config(tmp_path / "unknown_feature.yaml", drift={"features": {"latncy": {"max_psi": 0.2}}})
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(quality_table(300, seed=4), other / "raw.parquet")
    assert main(["fit", str(other / "raw.parquet"), "--artifact", str(other / "artifact.json")]) == 0
    assert main(
        [
            "drift",
            str(other / "raw.parquet"),
            "--artifact",
            str(other / "artifact.json"),
            "--report",
            str(other / "drift"),
        ]
    ) in (0, 1)
    return tmp_path


CASES = {
    "validate: missing input": (
        ["validate", "{w}/nope", "--artifact", "{a}"],
        "input '{w}/nope' does not exist",
    ),
    "validate: missing artifact": (
        ["validate", "{o}", "--artifact", "{w}/nope.json"],
        "artifact '{w}/nope.json' does not exist",
    ),
    "validate: input lacks a feature": (
        ["validate", "{w}/no_score.parquet", "--artifact", "{a}"],
        "input '{w}/no_score.parquet' lacks fitted column(s) score",
    ),
    "validate: missing source": (
        ["validate", "{o}", "--artifact", "{a}", "--source", "{w}/nope"],
        "option --source: input '{w}/nope' does not exist",
    ),
    "validate: report is a file": (
        ["validate", "{o}", "--artifact", "{a}", "--report", "{w}/a_file.txt"],
        "option --report: '{w}/a_file.txt' exists and is not a directory",
    ),
    "validate: report directory of other files": (
        ["validate", "{o}", "--artifact", "{a}", "--report", "{w}/busy"],
        "option --report: '{w}/busy' exists and was not written by normcore; it is left as it is",
    ),
    "validate: beam engine": (
        ["validate", "{o}", "--artifact", "{a}", "--engine", "beam"],
        "option --engine: 'beam' is not supported here; expected local or spark",
    ),
    "validate: mostly out of range": (
        ["validate", "{o}", "--artifact", "{a}", "--mostly", "0"],
        "options: validation.mostly: Input should be greater than 0",
    ),
    "validate: misspelt config key": (
        ["validate", "{o}", "--artifact", "{a}", "--config", "{w}/typo.yaml"],
        "{w}/typo.yaml: validation.mostyl: unknown key",
    ),
    "drift: input lacks a feature": (
        ["drift", "{w}/no_score.parquet", "--artifact", "{a}", "--report", "{w}/drift"],
        "input '{w}/no_score.parquet' lacks fitted column(s) score",
    ),
    "drift: no rows": (
        ["drift", "{w}/empty.parquet", "--artifact", "{a}", "--report", "{w}/drift"],
        "input '{w}/empty.parquet' has no rows",
    ),
    "drift: threshold for an unknown feature": (
        ["drift", "{r}", "--artifact", "{a}", "--config", "{w}/unknown_feature.yaml", "--report", "{w}/drift"],
        "drift.features: latncy not a feature of '{a}'",
    ),
    "drift: report is a file": (
        ["drift", "{r}", "--artifact", "{a}", "--report", "{w}/a_file.txt"],
        "option --report: '{w}/a_file.txt' exists and is not a directory",
    ),
    "report: output is a directory": (
        ["report", "{r}", "--artifact", "{a}", "--output", "{w}/busy"],
        "option --output: '{w}/busy' is a directory; expected an HTML file path",
    ),
    "report: output is not html": (
        ["report", "{r}", "--artifact", "{a}", "--output", "{w}/report.png"],
        "option --output: '{w}/report.png' should end with .html",
    ),
    "report: drift of another artifact": (
        ["report", "{r}", "--artifact", "{a}", "--output", "{w}/r.html", "--drift", "{w}/other/drift"],
        "option --drift: '{w}/other/drift/drift.json' was made with another artifact",
    ),
    "report: missing drift": (
        ["report", "{r}", "--artifact", "{a}", "--output", "{w}/r.html", "--drift", "{w}/nope.json"],
        "option --drift: '{w}/nope.json' is neither a drift report nor a directory holding drift.json",
    ),
    "report: no rows": (
        ["report", "{w}/empty.parquet", "--artifact", "{a}", "--output", "{w}/r.html"],
        "input '{w}/empty.parquet' has no rows",
    ),
}


def _files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(workspace, fitted, capsys, case):
    argv, message = CASES[case]
    names = {"w": workspace, "a": fitted.artifact, "o": fitted.output, "r": fitted.raw}
    before = _files(workspace)
    code = main([part.format(**names) for part in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message.format(**names) in err
    assert _files(workspace) == before
