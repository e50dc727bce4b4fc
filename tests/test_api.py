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


# -- the block (vectorized) path of Normalizer --------------------------------------------------

#: One feature per linear method (``minmax`` twice: with and without clipping).
_LINEAR_FEATURES = [
    "z:zscore",
    "m:minmax",
    {"name": "c", "method": "minmax", "params": {"clip": True, "feature_range": [-1.0, 1.0]}},
    "n:mean",
    "a:maxabs",
    "i:identity",
    "r:robust",
    "d:decimal",
]
#: Values every column of new data gets somewhere: non-finite (pass through), signed zeros,
#: far outside the fitted range (clip, saturation at the float64 maximum).
_SPECIAL_VALUES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5e308, -1.5e308, 1e6, -1e6]


def _fit_data(rows: int = 300) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(50.0, 20.0, size=(rows, len(_LINEAR_FEATURES))) * np.arange(1, len(_LINEAR_FEATURES) + 1)


def _new_data(rows: int) -> np.ndarray:
    rng = np.random.default_rng(rows)
    data = rng.normal(50.0, 40.0, size=(rows, len(_LINEAR_FEATURES)))
    for column in range(data.shape[1]):  # a different special value on each column of row 0
        data[0, column] = _SPECIAL_VALUES[column % len(_SPECIAL_VALUES)]
        data[1:, column][: len(_SPECIAL_VALUES)] = _SPECIAL_VALUES[: rows - 1]
    return data


def _same_bits(left: np.ndarray, right: np.ndarray) -> bool:
    # Stricter than array_equal: the signs of zeros and the NaN payloads count too.
    return left.shape == right.shape and np.array_equal(
        np.ascontiguousarray(left, dtype=np.float64).view(np.uint64),
        np.ascontiguousarray(right, dtype=np.float64).view(np.uint64),
    )


def _per_column(artifact: normcore.Artifact, data: np.ndarray, key: str | None = None, inverse: bool = False):
    # The per-column path: each feature's Fitted on its own float64 column.
    out = np.empty(data.shape, dtype=np.float64)
    for column, name in enumerate(artifact.feature_names):
        transform = artifact.transform(name, key)
        values = data[:, column].astype(np.float64)
        out[:, column] = transform.inverse(values) if inverse else transform.forward(values)
    return out


def _linear_reference(artifact: normcore.Artifact, data: np.ndarray, key: str | None = None) -> np.ndarray:
    # The linear formulas written here in NumPy float64 from the artifact's fitted numbers.
    x = data.astype(np.float64)
    out = np.empty_like(x)
    limit = np.finfo(np.float64).max
    with np.errstate(all="ignore"):
        for column, name in enumerate(artifact.feature_names):
            entry = artifact.feature(name, key)["transform"]
            if entry["method"] == "decimal":
                y = x[:, column] / 10.0 ** entry["exponent"]
            else:
                y = (x[:, column] - entry["shift"]) / entry["scale"] + entry["offset"]
                low, high = entry["clip"] if entry["clip"] is not None else (-limit, limit)
                y = np.minimum(np.maximum(y, low), high)
            out[:, column] = np.where(np.isfinite(x[:, column]), y, x[:, column])
    return out


def _assert_within_ulps(actual: np.ndarray, expected: np.ndarray, ulps: int) -> None:
    finite = np.isfinite(expected)
    assert np.array_equal(actual[~finite], expected[~finite], equal_nan=True)
    np.testing.assert_array_max_ulp(actual[finite], expected[finite], maxulp=ulps)


@pytest.fixture(scope="module")
def linear_artifact() -> normcore.Artifact:
    return normcore.fit(_fit_data(), features=_LINEAR_FEATURES)


@pytest.mark.parametrize("rows", [1, 2, 500])
@pytest.mark.parametrize("layout", ["C", "F", "float32", "int64", "strided"])
def test_block_path_gives_the_bits_of_the_per_column_path(
    linear_artifact: normcore.Artifact, rows: int, layout: str
) -> None:
    data = _new_data(rows)
    if layout == "F":
        data = np.asfortranarray(data)
    elif layout == "float32":
        with np.errstate(over="ignore"):  # 1.5e308 becomes inf
            data = data.astype(np.float32)
    elif layout == "int64":
        data = np.nan_to_num(data, posinf=0.0, neginf=0.0).clip(-1e15, 1e15).astype(np.int64)
    elif layout == "strided":
        data = np.repeat(data, 2, axis=1)[:, ::2]
    out = normcore.Normalizer(linear_artifact).transform(data)
    assert out.dtype == np.float64 and out.shape == data.shape and out.flags.c_contiguous
    assert _same_bits(out, _per_column(linear_artifact, data))
    _assert_within_ulps(out, _linear_reference(linear_artifact, data), ulps=0)
    if layout in ("C", "F"):  # the specials reached every column
        assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and out[0, 2] == -np.inf
        assert np.signbit(out[0, 4]) == np.signbit(_per_column(linear_artifact, data)[0, 4])


def test_minmax_clip_and_saturation_are_kept_on_the_block_path(linear_artifact: normcore.Artifact) -> None:
    data = np.array([[1e300] * len(_LINEAR_FEATURES), [-1e300] * len(_LINEAR_FEATURES)])
    out = normcore.Normalizer(linear_artifact).transform(data)
    assert out[0, 2] == 1.0 and out[1, 2] == -1.0  # clipped to feature_range [-1, 1]
    assert out[0, 1] > 1.0  # unclipped minmax
    small = normcore.fit(_fit_data()[:, :4] * 1e-3, features=["z:zscore", "n:mean", "a:maxabs", "m:minmax"])
    out = normcore.Normalizer(small).transform(np.array([[1.7e308] * 4, [-1.7e308] * 4]))
    limit = np.finfo(np.float64).max
    assert np.array_equal(out, np.array([[limit] * 4, [-limit] * 4]))  # saturated, not infinite


@pytest.mark.parametrize("rows", [1, 500])
def test_inverse_block_path_gives_the_bits_of_the_per_column_path_and_round_trips(
    linear_artifact: normcore.Artifact, rows: int
) -> None:
    norm = normcore.Normalizer(linear_artifact)
    data = _new_data(rows)
    normalized = norm.transform(data)
    restored = norm.inverse_transform(normalized)
    assert _same_bits(restored, _per_column(linear_artifact, normalized, inverse=True))
    regular = np.isfinite(data) & (np.abs(data) < 1e300)
    regular[:, 2] &= np.abs(normalized[:, 2]) < 1.0  # a clipped value cannot come back
    np.testing.assert_allclose(restored[regular], data[regular], rtol=1e-12, atol=1e-9)
    assert np.array_equal(restored[~np.isfinite(data)], data[~np.isfinite(data)], equal_nan=True)


def test_mixed_linear_and_other_methods_keep_their_columns() -> None:
    rng = np.random.default_rng(3)
    fit_data = np.column_stack(
        [rng.normal(5, 2, 400), rng.lognormal(0, 1, 400), rng.uniform(0, 9, 400), rng.exponential(2, 400)]
    )
    features = ["a:zscore", "p:power", "m:minmax", "q:quantile"]
    artifact = normcore.fit(fit_data, features=features)
    data = np.column_stack(
        [rng.normal(5, 2, 50), rng.lognormal(0, 1, 50), rng.uniform(0, 9, 50), rng.exponential(2, 50)]
    )
    data[0] = [np.nan, np.inf, -np.inf, np.nan]
    norm = normcore.Normalizer(artifact)
    out = norm.transform(data)
    assert _same_bits(out, _per_column(artifact, data))
    np.testing.assert_allclose(out[1:, 0], (data[1:, 0] - fit_data[:, 0].mean()) / fit_data[:, 0].std(), rtol=1e-12)
    np.testing.assert_allclose(out[1:, 2], (data[1:, 2] - fit_data[:, 2].min()) / np.ptp(fit_data[:, 2]), rtol=1e-12)
    assert _same_bits(norm.inverse_transform(out), _per_column(artifact, out, inverse=True))
    subset = normcore.Normalizer(artifact, features=["q", "a"]).transform(data[:, [3, 0]])
    assert _same_bits(subset, out[:, [3, 0]])


def test_keyed_artifact_with_a_chosen_key_uses_its_parameters_on_the_block_path() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat(["x", "y"], 200)
    values = np.where(labels == "x", 1.0, 100.0)[:, None] * rng.normal(3, 1, (400, 2))
    frame = pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "label": labels})
    artifact = normcore.fit(frame, features=["a:zscore", "b:minmax"], key="label")
    data = rng.normal(300, 100, (20, 2))
    data[0] = [np.nan, -np.inf]
    for key in ("y", "unseen", None):
        out = normcore.Normalizer(artifact, key=key).transform(data)
        assert _same_bits(out, _per_column(artifact, data, key))
        _assert_within_ulps(out, _linear_reference(artifact, data, key), ulps=0)
    table = pa.table({"a": data[:, 0], "b": data[:, 1], "label": ["y"] * len(data)})
    by_table = normcore.Normalizer(artifact).transform(table)
    assert _same_bits(
        normcore.Normalizer(artifact, key="y").transform(data), by_table.select(["a", "b"]).to_pandas().to_numpy()
    )


def test_one_dimensional_input_is_one_feature_column(linear_artifact: normcore.Artifact) -> None:
    column = _new_data(10)[:, 0]
    one = normcore.Normalizer(linear_artifact, features=["z"])
    out = one.transform(column)
    assert out.shape == column.shape and _same_bits(out, linear_artifact.transform("z").forward(column.copy()))
    with pytest.raises(normcore.InputError, match=r"shape \(n_samples, 8\) for features z, m, c"):
        normcore.Normalizer(linear_artifact).transform(_new_data(8)[0])


@pytest.mark.parametrize("rows", [1, 2, 300])
def test_dataframe_block_path_equals_the_arrow_table_path(linear_artifact: normcore.Artifact, rows: int) -> None:
    data = _new_data(rows)
    frame = pd.DataFrame(data, columns=linear_artifact.feature_names)
    frame["i"] = pd.array(np.arange(rows) * 7, dtype="Int64")
    frame.loc[0, "i"] = pd.NA
    frame.insert(3, "label", [f"row{i}" for i in range(rows)])
    original = frame.copy()
    norm = normcore.Normalizer(linear_artifact)
    out = norm.transform(frame)
    by_table = norm.transform(pa.Table.from_pandas(frame, preserve_index=False)).to_pandas()
    assert list(out.columns) == list(frame.columns) and out["label"].equals(frame["label"])
    assert all(out[name].dtype == np.float64 for name in linear_artifact.feature_names)
    features = linear_artifact.feature_names
    assert _same_bits(out[features].to_numpy(), by_table[features].to_numpy(dtype=np.float64, na_value=np.nan))
    assert np.isnan(out.loc[0, "i"])
    pd.testing.assert_frame_equal(frame, original)  # the input is left alone
    restored = norm.inverse_transform(out)
    assert _same_bits(
        restored[features].to_numpy(), _per_column(linear_artifact, out[features].to_numpy(), inverse=True)
    )
