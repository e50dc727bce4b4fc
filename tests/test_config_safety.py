"""Configuration and selection that used to lose what the user said: YAML traps, --features
over a config, columns of the wrong type at apply, columns with nothing to fit."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.cli import main
from normcore.fitting import EmptyFeatureWarning


def _error(argv: list[str], capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": rng.normal(10, 2, 500), "b": rng.normal(0, 1, 500)}), path)
    return path


YAML_CASES = {
    "key given twice": ("method: zscore\nddof: 0\nmethod: minmax\n", "(line 3): key 'method' is given twice"),
    "nested key given twice": (
        "spark:\n  conf:\n    spark.ui.enabled: 'false'\n    spark.ui.enabled: 'true'\n",
        "(line 4): key 'spark.ui.enabled' is given twice",
    ),
    "alias bomb under spark.conf": (
        "spark:\n  conf:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
        "(line 4): alias '*a' is not accepted",
    ),
    "nested value in spark.conf": ("spark:\n  conf:\n    spark.x: {deep: 1}\n", "spark.conf: Value error, conf values"),
    "bad master": ("spark:\n  master: bogus://host\n", "spark.master: Value error, 'bogus://host' is not a Spark"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_yaml_traps_are_exit_2_naming_the_key(data: Path, tmp_path: Path, capsys, case: str) -> None:
    text, message = YAML_CASES[case]
    config = tmp_path / "job.yaml"
    config.write_text(text)
    line = _error(["fit", str(data), "--artifact", str(tmp_path / "a.json"), "--config", str(config)], capsys)
    assert message.replace("Value error, ", "") in line
    assert not (tmp_path / "a.json").exists()


def test_features_option_keeps_what_the_config_says_of_each_feature(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(
        "features:\n  - {name: a, method: minmax, params: {feature_range: [-1, 1], clip: true}}\n"
        "  - {name: b, method: robust, params: {quantile_range: [10, 90]}}\n"
    )
    art = tmp_path / "a.json"
    assert main(["fit", str(data), "--artifact", str(art), "--config", str(config), "--features", "a,b:zscore"]) == 0
    features = json.loads(art.read_text())["features"]
    assert features["a"]["transform"]["params"] == {"feature_range": [-1.0, 1.0], "clip": True}
    assert features["a"]["transform"]["clip"] == [-1.0, 1.0]
    assert features["b"]["transform"]["method"] == "zscore"  # the option named another method: it wins
    assert main(["fit", str(data), "--artifact", str(art), "--config", str(config), "--features", "a:minmax"]) == 0
    assert json.loads(art.read_text())["features"]["a"]["transform"]["offset"] == -1.0  # same method: params kept


@pytest.mark.parametrize(
    "column, kind",
    [
        (pa.array([True, False] * 250), "bool"),
        (pa.array([str(v) for v in range(500)]), "string"),
        (pa.array([b"1"] * 500), "binary"),
    ],
)
def test_apply_refuses_a_feature_column_that_is_not_a_number(
    data: Path, tmp_path: Path, capsys, column: pa.Array, kind: str
) -> None:
    art = tmp_path / "a.json"
    assert main(["fit", str(data), "--artifact", str(art)]) == 0
    other = tmp_path / "other.parquet"
    table = pq.read_table(data)
    pq.write_table(table.set_column(0, "a", column), other)
    line = _error(["apply", str(other), "--artifact", str(art), "--output", str(tmp_path / "out")], capsys)
    assert f"column 'a' of '{other}' has type {kind}" in line
    assert not (tmp_path / "out").exists()


def test_default_selection_skips_a_column_without_a_finite_value(tmp_path: Path, capsys) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0, 4.0], "empty": pa.array([None, np.nan, np.inf]), "n": [1, 2, 3]}), path)
    art = tmp_path / "a.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import normcore

        artifact = normcore.fit(pq.read_table(path))
    assert artifact.feature_names == ["x", "n"]
    assert [w.category for w in caught] == [EmptyFeatureWarning]
    assert "column(s) empty" in str(caught[0].message)
    assert main(["fit", str(path), "--artifact", str(art)]) == 0
    assert "warning: column(s) empty in" in capsys.readouterr().err
    line = _error(["fit", str(path), "--artifact", str(tmp_path / "b.json"), "--features", "x,empty"], capsys)
    assert "column 'empty'" in line and "has no finite value" in line
