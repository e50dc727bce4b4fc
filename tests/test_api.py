"""The Python API for training code: normcore.fit, load_artifact, Normalizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.preprocessing import StandardScaler

import normcore


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    return pd.DataFrame(
        {
            "a": rng.normal(1e3, 3.0, 400),  # well-conditioned: the references lose digits at 1e9
            "b": rng.integers(0, 100, 400),
            "label": rng.choice(["x", "y"], 400),
        }
    )


def _reference(frame: pd.DataFrame) -> np.ndarray:
    return StandardScaler().fit_transform(frame[["a", "b"]].to_numpy(dtype=np.float64))


def test_numpy_pyarrow_and_pandas_give_the_same_kind_back(frame: pd.DataFrame, tmp_path: Path) -> None:
    normcore.fit(frame).save(tmp_path / "stats.json")
    norm = normcore.Normalizer.from_artifact(tmp_path / "stats.json")
    expected = _reference(frame)

    out_frame = norm.transform(frame)
    assert isinstance(out_frame, pd.DataFrame) and list(out_frame.columns) == ["a", "b", "label"]
    assert out_frame["label"].equals(frame["label"])
    np.testing.assert_allclose(out_frame[["a", "b"]].to_numpy(), expected, rtol=1e-9, atol=1e-12)

    table = pa.Table.from_pandas(frame, preserve_index=False)
    out_table = norm.transform(table)
    assert isinstance(out_table, pa.Table) and out_table.schema.field("b").type == pa.float64()
    assert out_table.column("label").equals(table.column("label"))
    np.testing.assert_allclose(out_table.select(["a", "b"]).to_pandas().to_numpy(), expected, rtol=1e-9, atol=1e-12)

    out_batch = norm.transform(table.to_batches()[0])
    assert isinstance(out_batch, pa.RecordBatch)

    array = frame[["a", "b"]].to_numpy(dtype=np.float64)
    out_array = norm.transform(array)
    assert isinstance(out_array, np.ndarray) and out_array.shape == array.shape
    np.testing.assert_allclose(out_array, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(norm.inverse_transform(out_array), array, rtol=1e-15)


def test_pandas_missing_values_stay_missing(frame: pd.DataFrame) -> None:
    frame["b"] = frame["b"].astype("Int64")
    frame.loc[3, "b"] = pd.NA
    frame.loc[4, "a"] = np.nan
    out = normcore.Normalizer(normcore.fit(frame)).transform(frame)
    assert np.isnan(out.loc[3, "b"]) and np.isnan(out.loc[4, "a"])
    assert out["b"].notna().sum() == 399


def test_numpy_fit_takes_column_names_from_features() -> None:
    data = np.column_stack([np.arange(10.0), np.arange(10.0) ** 2])
    artifact = normcore.fit(data, features=["lin", "sq:minmax"])
    assert artifact.feature_names == ["lin", "sq"]
    out = normcore.Normalizer(artifact).transform(data)
    np.testing.assert_allclose(out[:, 1], data[:, 1] / 81.0)


def test_keyed_artifact_uses_keys_for_frames_and_a_chosen_key_for_arrays(frame: pd.DataFrame) -> None:
    artifact = normcore.fit(frame, features="a", key="label")
    out = normcore.Normalizer(artifact).transform(frame)
    for _, group in frame.groupby("label"):
        expected = (group["a"] - group["a"].mean()) / group["a"].std(ddof=0)
        np.testing.assert_allclose(out.loc[group.index, "a"], expected, rtol=1e-9, atol=1e-12)
    array = frame.loc[frame["label"] == "y", ["a"]].to_numpy()
    np.testing.assert_allclose(
        normcore.Normalizer(artifact, key="y").transform(array)[:, 0], out.loc[frame["label"] == "y", "a"], rtol=1e-12
    )


def test_wrong_shapes_and_kinds_are_rejected_with_clear_errors(frame: pd.DataFrame) -> None:
    norm = normcore.Normalizer(normcore.fit(frame))
    with pytest.raises(normcore.InputError, match=r"shape \(n_samples, 2\) for features a, b"):
        norm.transform(np.zeros((3, 3)))
    with pytest.raises(normcore.InputError, match="lacks fitted column"):
        norm.transform(frame.drop(columns="b"))
    with pytest.raises(normcore.InputError, match="cannot fit data of type list"):
        normcore.fit([1, 2, 3])
    with pytest.raises(normcore.ArtifactError, match="has no feature 'zzz'"):
        normcore.Normalizer(normcore.fit(frame), features=["zzz"])
    with pytest.raises(normcore.ConfigError, match="unknown method 'nope'"):
        normcore.fit(frame, method="nope")
