"""The local engine through the CLI: invariance to file layout, outputs, keys, config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from core_support import write_parts

from normcore.artifact import load_artifact
from normcore.cli import main
from normcore.errors import InputError
from normcore.io import open_input, relabel

FEATURES = ["price", "rate", "count", "latency"]


def _stats_close(left: dict, right: dict, rel: float = 1e-12, missing_as_one: bool = False) -> None:
    assert left.keys() == right.keys()
    for name in left:
        a, b = left[name]["stats"], right[name]["stats"]
        exact = ["count", "inf_count", "min", "max", "max_abs"]
        if missing_as_one:
            assert a["null_count"] + a["nan_count"] == b["null_count"] + b["nan_count"], name
        else:
            exact += ["null_count", "nan_count"]
        for field in exact:
            assert a[field] == b[field], (name, field)
        for field in ("mean", "var", "std"):
            assert a[field] == pytest.approx(b[field], rel=rel, abs=0), (name, field)
        for field in ("shift", "scale", "offset"):
            assert left[name]["transform"][field] == pytest.approx(right[name]["transform"][field], rel=rel)


def test_one_file_and_40_files_give_the_same_artifact(tmp_path: Path, sample_table: pa.Table) -> None:
    pq.write_table(sample_table, tmp_path / "one.parquet")
    write_parts(sample_table, tmp_path / "forty", 40)
    for source, target in (("one.parquet", "a.json"), ("forty", "b.json")):
        assert main(["fit", str(tmp_path / source), "--artifact", str(tmp_path / target), "--batch-size", "97"]) == 0
    one, forty = load_artifact(tmp_path / "a.json"), load_artifact(tmp_path / "b.json")
    assert one.rows == forty.rows == sample_table.num_rows
    _stats_close(one.document["features"], forty.document["features"])


def test_files_with_promotable_types_are_read_as_one_schema(tmp_path: Path) -> None:
    (tmp_path / "mixed").mkdir()
    pq.write_table(pa.table({"a": pa.array([1, 2, 3], pa.int32())}), tmp_path / "mixed" / "p1.parquet")
    pq.write_table(pa.table({"a": pa.array([1.5, 2.5], pa.float64())}), tmp_path / "mixed" / "p2.parquet")
    assert main(["fit", str(tmp_path / "mixed"), "--artifact", str(tmp_path / "a.json")]) == 0
    stats = load_artifact(tmp_path / "a.json").feature("a")["stats"]
    assert (stats["count"], stats["mean"], stats["max"]) == (5, 2.0, 3.0)


def test_csv_input_matches_parquet_input(tmp_path: Path, sample_table: pa.Table) -> None:
    table = sample_table.select(["id", *FEATURES])
    pq.write_table(table, tmp_path / "data.parquet")
    pacsv.write_csv(table, tmp_path / "data.csv")
    for source, target in (("data.parquet", "p.json"), ("data.csv", "c.json")):
        assert main(["fit", str(tmp_path / source), "--artifact", str(tmp_path / target)]) == 0
    parquet, csv = load_artifact(tmp_path / "p.json"), load_artifact(tmp_path / "c.json")
    # CSV text round-trips floats exactly, but a NaN written as "nan" reads back as null.
    _stats_close(parquet.document["features"], csv.document["features"], missing_as_one=True)


def test_apply_output_keeps_rows_and_pass_through_columns(tmp_path: Path, sample_dir: Path, sample_table) -> None:
    artifact, output = tmp_path / "a.json", tmp_path / "out"
    assert main(["fit", str(sample_dir), "--artifact", str(artifact), "--features", ",".join(FEATURES)]) == 0
    assert main(["apply", str(sample_dir), "--artifact", str(artifact), "--output", str(output)]) == 0
    result = ds.dataset(output).to_table()
    assert result.num_rows == sample_table.num_rows
    assert result.column_names == sample_table.column_names
    for name in ("id", "category", "constant"):
        assert result.column(name).equals(sample_table.column(name))
    for name in FEATURES:
        assert result.schema.field(name).type == pa.float64()
        source = sample_table.column(name).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        finite = source[np.isfinite(source)]
        expected = (source - finite.mean()) / finite.std()
        got = result.column(name).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert result.column(name).null_count == sample_table.column(name).null_count


def test_apply_compresses_the_features_where_snappy_pays(tmp_path: Path) -> None:
    # A continuous feature's normalized mantissas do not compress: written uncompressed. A
    # 0 / 1 flag and the pass-through column stay Snappy-compressed; the values are NumPy's.
    rng = np.random.default_rng(4)
    continuous, flag = rng.normal(5.0, 2.0, 50_000), (rng.random(50_000) < 0.3).astype(np.float64)
    pq.write_table(pa.table({"x": continuous, "flag": flag, "kept": continuous}), tmp_path / "in.parquet")
    artifact, output = tmp_path / "a.json", tmp_path / "out"
    assert main(["fit", str(tmp_path / "in.parquet"), "--artifact", str(artifact), "--features", "x,flag"]) == 0
    assert main(["apply", str(tmp_path / "in.parquet"), "--artifact", str(artifact), "--output", str(output)]) == 0
    (part,) = output.glob("*.parquet")
    chunks = pq.ParquetFile(part).metadata.row_group(0)
    codecs = {chunks.column(i).path_in_schema: chunks.column(i).compression for i in range(chunks.num_columns)}
    assert codecs == {"x": "UNCOMPRESSED", "flag": "SNAPPY", "kept": "SNAPPY"}
    flag_chunk = chunks.column(list(codecs).index("flag"))
    assert flag_chunk.total_compressed_size < flag_chunk.total_uncompressed_size / 3
    result = pq.read_table(part)
    for name, values in (("x", continuous), ("flag", flag)):
        np.testing.assert_allclose(result.column(name).to_numpy(), (values - values.mean()) / values.std(), rtol=1e-12)
    assert result.column("kept").to_numpy().tobytes() == continuous.tobytes()


def _write_for_nullability(directory: Path) -> None:
    """Two files: ``clean`` never null, ``holey`` null once in the second file's second row
    group, ``partial`` absent from the second file, ``hidden`` without statistics in the
    first, ``declared`` a not-null field written without statistics, ``tag`` passed through."""
    directory.mkdir()
    rng = np.random.default_rng(9)
    values = [rng.normal(3.0, 2.0, 600) for _ in range(2)]
    holey = values[1].copy().tolist()
    holey[450] = None
    not_null = pa.field("declared", pa.float64(), nullable=False)
    first = pa.table(
        {"clean": values[0], "holey": values[0], "partial": values[0], "hidden": values[0], "tag": ["a"] * 600}
    ).append_column(not_null, [values[0]])
    second = pa.table(
        {"clean": values[1], "holey": pa.array(holey), "hidden": values[1], "tag": ["b"] * 600}
    ).append_column(not_null, [values[1]])
    pq.write_table(first, directory / "p0.parquet", row_group_size=250, write_statistics=["clean", "holey", "partial"])
    pq.write_table(second, directory / "p1.parquet", row_group_size=250, write_statistics=["clean", "holey", "hidden"])


def test_null_free_features_are_written_declared_not_null(tmp_path: Path) -> None:
    # What the footers prove null-free goes out as a required Parquet column (no definition
    # levels); everything else keeps its nullability, and the values are NumPy's z-scores.
    data, artifact, output = tmp_path / "in", tmp_path / "a.json", tmp_path / "out"
    _write_for_nullability(data)
    features = ["clean", "holey", "partial", "hidden", "declared"]
    assert open_input(str(data)).null_free([*features, "tag", "absent"]) == {"clean", "declared"}
    assert main(["fit", str(data), "--artifact", str(artifact), "--features", ",".join(features)]) == 0
    assert main(["apply", str(data), "--artifact", str(artifact), "--output", str(output), "--workers", "2"]) == 0
    source = ds.dataset(data).to_table()
    for part in sorted(output.glob("*.parquet")):
        parquet_schema = pq.ParquetFile(part).metadata.schema
        levels = {parquet_schema.column(i).name: parquet_schema.column(i).max_definition_level for i in range(6)}
        assert levels == {"clean": 0, "holey": 1, "partial": 1, "hidden": 1, "tag": 1, "declared": 0}
    result = ds.dataset(output).to_table()
    assert [f.nullable for f in result.schema] == [False, True, True, True, True, False]
    assert result.schema.field("tag") == source.schema.field("tag")
    assert result.column("tag").equals(source.column("tag"))
    for name in features:
        raw = source.column(name).to_numpy(zero_copy_only=False)
        expected = (raw - np.nanmean(raw)) / np.nanstd(raw)
        got = result.column(name).to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
        assert result.column(name).null_count == source.column(name).null_count


def test_a_csv_input_proves_no_column_null_free(tmp_path: Path) -> None:
    pacsv.write_csv(pa.table({"x": [1.0, 2.0]}), tmp_path / "d.csv")
    assert open_input(str(tmp_path / "d.csv")).null_free(["x"]) == frozenset()


def test_a_batch_with_nulls_under_a_not_null_schema_is_refused() -> None:
    # The input's footers said "no null" and a batch holds one: the files are inconsistent.
    schema = pa.schema([pa.field("x", pa.float64(), nullable=False)])
    assert relabel(pa.record_batch({"x": [1.0, 2.0]}), schema).schema == schema
    with pytest.raises(InputError, match="column 'x' holds 1 null"):
        relabel(pa.record_batch({"x": [1.0, None]}), schema)


@pytest.mark.parametrize("method", ["zscore", "minmax", "robust", "quantile", "decimal"])
def test_inverse_apply_restores_the_input(tmp_path: Path, sample_dir: Path, sample_table, method: str) -> None:
    artifact, normalized, restored = tmp_path / "a.json", tmp_path / "n", tmp_path / "r"
    features = ",".join(f"{f}:{method}" for f in FEATURES)
    assert main(["fit", str(sample_dir), "--artifact", str(artifact), "--features", features]) == 0
    assert main(["apply", str(sample_dir), "--artifact", str(artifact), "--output", str(normalized)]) == 0
    assert main(["apply", str(normalized), "--artifact", str(artifact), "--output", str(restored), "--inverse"]) == 0
    result = ds.dataset(restored).to_table()
    for name in FEATURES:
        original = sample_table.column(name).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        back = result.column(name).to_pandas().to_numpy(dtype=np.float64, na_value=np.nan)
        tolerance = 1e-9 if method == "quantile" else 1e-12
        np.testing.assert_allclose(
            back, original, rtol=tolerance, atol=tolerance * np.nanmax(np.abs(original)), equal_nan=True
        )


def _keyed_frame(rows: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "store": rng.choice(["north", "south", "east"], size=rows),
            "sales": rng.normal(1e6, 1e3, size=rows),
            "units": rng.poisson(20, size=rows).astype("int64"),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "store"] = None
    return frame


def test_per_key_statistics_equal_a_pandas_groupby(tmp_path: Path) -> None:
    frame = _keyed_frame()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "k.parquet")
    assert main(["fit", str(tmp_path / "k.parquet"), "--artifact", str(tmp_path / "k.json"), "--key", "store"]) == 0
    artifact = load_artifact(tmp_path / "k.json")
    assert artifact.key_values == ["east", "north", "south"]
    grouped = frame.groupby("store")
    for store in artifact.key_values:
        group = grouped.get_group(store)
        assert artifact.document["keys"][store]["rows"] == len(group)
        for name in ("sales", "units"):
            stats = artifact.feature(name, store)["stats"]
            assert stats["count"] == len(group)
            assert stats["mean"] == pytest.approx(group[name].mean(), rel=1e-12)
            assert stats["var"] == pytest.approx(group[name].var(ddof=0), rel=1e-9)
            assert (stats["min"], stats["max"]) == (group[name].min(), group[name].max())
    # Rows with a null key count in the global statistics only.
    assert artifact.rows == len(frame)
    assert artifact.feature("sales")["stats"]["mean"] == pytest.approx(frame["sales"].mean(), rel=1e-12)


def test_apply_uses_each_rows_key_and_counts_unseen_keys(tmp_path: Path, capsys) -> None:
    frame = _keyed_frame()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "k.parquet")
    assert main(["fit", str(tmp_path / "k.parquet"), "--artifact", str(tmp_path / "k.json"), "--key", "store"]) == 0
    new = frame.copy()
    new.loc[:99, "store"] = "west"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), tmp_path / "new.parquet")
    capsys.readouterr()
    assert (
        main(
            [
                "apply",
                str(tmp_path / "new.parquet"),
                "--artifact",
                str(tmp_path / "k.json"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    summary = capsys.readouterr().out
    assert "unseen keys: 100 rows used the global statistics (e.g. west)" in summary
    result = ds.dataset(tmp_path / "o").to_table().to_pandas()
    stats = frame.groupby("store")["sales"].agg(mean="mean", std=lambda s: s.std(ddof=0))
    for store in ("north", "south", "east"):
        rows = new["store"] == store
        expected = (new.loc[rows, "sales"] - stats.loc[store, "mean"]) / stats.loc[store, "std"]
        np.testing.assert_allclose(result.loc[rows, "sales"], expected, rtol=1e-9, atol=1e-12)
    fallback = new["store"].isin(["west"]) | new["store"].isna()
    expected = (new.loc[fallback, "sales"] - frame["sales"].mean()) / frame["sales"].std(ddof=0)
    np.testing.assert_allclose(result.loc[fallback, "sales"], expected, rtol=1e-9, atol=1e-12)


def test_run_with_config_and_option_override(tmp_path: Path, sample_dir: Path, capsys) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(
        f"input: {sample_dir}\nartifact: {tmp_path}/a.json\noutput: {tmp_path}/out\nddof: 1\n"
        "features:\n  - {name: rate, method: minmax, params: {feature_range: [-1, 1]}}\n  - {name: price}\n"
    )
    assert main(["run", "--config", str(config), "--method", "maxabs"]) == 0
    artifact = load_artifact(tmp_path / "a.json")
    assert artifact.feature("rate")["transform"]["params"]["feature_range"] == [-1.0, 1.0]
    assert artifact.feature("price")["transform"]["method"] == "maxabs"
    assert artifact.ddof == 1
    result = ds.dataset(tmp_path / "out").to_table()
    rate = result.column("rate").to_numpy(zero_copy_only=False)
    assert np.nanmin(rate) == -1.0 and np.nanmax(rate) == 1.0
    assert "artifact:" in capsys.readouterr().out


def test_inspect_shows_every_feature(tmp_path: Path, sample_dir: Path, capsys) -> None:
    assert (
        main(["fit", str(sample_dir), "--artifact", str(tmp_path / "a.json"), "--features", "price,latency:robust"])
        == 0
    )
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "a.json")]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].startswith("a.json: normcore.artifact v1, engine local")
    assert any(line.startswith("price") and "zscore" in line for line in lines)
    assert any(line.startswith("latency") and "robust" in line for line in lines)
    assert main(["inspect", str(tmp_path / "a.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "normcore.artifact"
