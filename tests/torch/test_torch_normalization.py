"""normcore.torch.Normalization against ``normcore apply`` / ``normcore fit`` (the same formulas,
evaluated on tensors), for every method, per key too; dtypes, gradients, state, compile."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import torch
from core_support import exact_mean_var
from torch.utils.data import DataLoader, TensorDataset

import normcore
from normcore.cli import main
from normcore.torch import Normalization

ROWS = 900
RNG = np.random.default_rng(12)
DATA = {
    "z": RNG.normal(5.0, 2.0, ROWS),
    "m": RNG.uniform(-3.0, 9.0, ROWS),
    "d": RNG.normal(0.0, 1e5, ROWS),
    "q": RNG.lognormal(0.0, 1.0, ROWS),
    "qn": RNG.normal(0.0, 1.0, ROWS),
    "p": RNG.lognormal(1.0, 1.0, ROWS),
    "bc": RNG.exponential(3.0, ROWS) + 0.1,
    "l": RNG.standard_t(3.0, ROWS) * 50,
    "r": RNG.exponential(3.0, ROWS),
    "mean": RNG.normal(0.0, 3.0, ROWS),
    "ma": RNG.normal(0.0, 3.0, ROWS),
    "id": RNG.normal(0.0, 3.0, ROWS),
}
KEYS = np.array(["north", "south", "east"])[RNG.integers(0, 3, ROWS)]
FEATURES = [
    {"name": "z", "method": "zscore"},
    {"name": "m", "method": "minmax", "params": {"feature_range": [-1, 1], "clip": True}},
    {"name": "d", "method": "decimal"},
    {"name": "q", "method": "quantile", "params": {"n_quantiles": 50}},
    {"name": "qn", "method": "quantile", "params": {"n_quantiles": 50, "output": "normal"}},
    {"name": "p", "method": "power"},
    {"name": "bc", "method": "power", "params": {"method": "box-cox"}},
    {"name": "l", "method": "log", "params": {"standardize": True}},
    {"name": "r", "method": "robust"},
    {"name": "mean", "method": "mean"},
    {"name": "ma", "method": "maxabs"},
    {"name": "id", "method": "identity"},
]
NAMES = [f["name"] for f in FEATURES]
#: torch's and NumPy's log1p / expm1 / exp may differ in the last bit.
ATOL = 1e-12


def _matrix(names=NAMES) -> np.ndarray:
    return np.stack([DATA[name] for name in names], axis=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("torch-normalization")
    pq.write_table(pa.table({**DATA, "k": KEYS}), root / "data.parquet")
    return root


def _config(root: Path) -> Path:
    config = root / "job.yaml"
    config.write_text(json.dumps({"features": FEATURES}))  # JSON is YAML
    return config


@pytest.mark.parametrize("key", [None, "k"])
def test_from_artifact_equals_normcore_apply_for_every_method(files: Path, key: str | None) -> None:
    artifact, output = files / f"artifact-{key}.json", files / f"out-{key}"
    fit = ["fit", str(files / "data.parquet"), "--artifact", str(artifact), "--config", str(_config(files))]
    assert main(fit + (["--key", key] if key else [])) == 0
    assert main(["apply", str(files / "data.parquet"), "--artifact", str(artifact), "--output", str(output)]) == 0
    expected = ds.dataset(output).to_table()
    layer = Normalization.from_artifact(artifact)
    keys = {"key": KEYS.tolist()} if key else {}
    ours = layer(torch.tensor(_matrix()), **keys).numpy()
    for index, name in enumerate(NAMES):
        np.testing.assert_allclose(ours[:, index], expected.column(name).to_numpy(), rtol=0, atol=ATOL, err_msg=name)
    back = layer.inverse(torch.tensor(ours), **keys).numpy()
    for index, name in enumerate(NAMES):
        original = _matrix()[:, index]
        np.testing.assert_allclose(back[:, index], original, rtol=0, atol=1e-9 * np.abs(original).max(), err_msg=name)


def test_unseen_and_null_keys_use_the_global_parameters() -> None:
    table = {**{n: DATA[n] for n in ("z", "q")}, "k": KEYS}
    artifact = normcore.fit(table, features=["z", "q:quantile"], key="k")
    layer = Normalization.from_artifact(artifact)
    x = torch.tensor(_matrix(["z", "q"])[:4])
    keys = ["north", "nowhere", None, "east"]
    out = layer(x, key=keys)
    glob = Normalization.from_artifact(artifact)(x, key=[None] * 4)
    torch.testing.assert_close(out[1], glob[1])
    torch.testing.assert_close(out[2], glob[2])
    assert not torch.equal(out[0], glob[0])


def test_adapt_on_a_dataloader_equals_normcore_fit(files: Path) -> None:
    artifact = files / "fitted.json"
    assert main(["fit", str(files / "data.parquet"), "--artifact", str(artifact), "--config", str(_config(files))]) == 0
    loader = DataLoader(TensorDataset(torch.tensor(_matrix())), batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = Normalization().adapt([batch[0] for batch in loader], features=FEATURES)
    fitted = normcore.load_artifact(artifact)
    for name in NAMES:
        ours, theirs = layer.artifact.feature(name), fitted.feature(name)
        for stat in ("count", "null_count", "nan_count", "inf_count"):
            assert ours["stats"][stat] == theirs["stats"][stat], (name, stat)
        for stat in ("mean", "std", "min", "max"):
            assert ours["stats"][stat] == pytest.approx(theirs["stats"][stat], rel=1e-13, abs=1e-13), (name, stat)
        for field, value in theirs["transform"].items():
            mine = ours["transform"][field]
            if isinstance(value, float):
                assert mine == pytest.approx(value, rel=1e-12, abs=1e-14), (name, field)
            elif isinstance(value, list) and value and isinstance(value[0], float):
                np.testing.assert_allclose(mine, value, rtol=1e-12, atol=1e-14, err_msg=f"{name}.{field}")
            else:
                assert mine == value, (name, field)


def test_adapt_per_key_from_mappings_and_a_generator_for_one_pass_methods() -> None:
    batches = ({"z": torch.tensor(DATA["z"][i : i + 100]), "k": KEYS[i : i + 100]} for i in range(0, ROWS, 100))
    layer = Normalization().adapt(batches, features=["z"], key="k")
    reference = normcore.fit({"z": DATA["z"], "k": KEYS}, features=["z"], key="k")
    for value in ("north", "south", "east"):
        ours, theirs = layer.artifact.transform("z", value).values, reference.transform("z", value).values
        assert ours["shift"] == pytest.approx(theirs["shift"], rel=1e-14)
        assert ours["scale"] == pytest.approx(theirs["scale"], rel=1e-14)
    generator = (torch.tensor(_matrix(["p"])[i : i + 100]) for i in range(0, ROWS, 100))
    with pytest.raises(normcore.ConfigError, match="re-iterable batches"):
        Normalization().adapt(generator, features=["p:power"])


def test_adapt_is_exact_at_an_offset_of_1e9_and_a_constant_feature_gets_scale_1() -> None:
    offset = 1e9 + RNG.normal(0.0, 1.0, 5000)
    x = torch.tensor(np.stack([offset, np.full(5000, 7.0)], axis=1), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = Normalization().adapt(batch[0] for batch in DataLoader(TensorDataset(x), batch_size=256))
    stats = layer.artifact.feature("x0")["stats"]
    exact = exact_mean_var(offset)[1]
    assert stats["var"] == pytest.approx(exact, rel=1e-14)
    # Keras adapts in float32: at 1e9 the values themselves keep no digit of N(0, 1) (spacing 64).
    float32_variance = float(np.var(offset.astype(np.float32)))
    assert abs(float32_variance - exact) > 0.5 * exact
    assert layer.artifact.transform("x1").values["scale"] == 1.0
    normalized = layer(torch.tensor([[1e9, 7.0]], dtype=torch.float64))
    assert torch.equal(normalized[:, 1], torch.tensor([0.0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_any_float_dtype_in_its_dtype_out_math_in_float32(dtype: torch.dtype) -> None:
    names = ["z", "q", "p", "l"]  # in FEATURES' order
    artifact = normcore.fit({n: DATA[n] for n in names}, features=[f for f in FEATURES if f["name"] in names])
    layer = Normalization.from_artifact(artifact)
    x = torch.tensor(_matrix(names)).to(dtype)
    out = layer(x)
    assert out.dtype == dtype
    reference = layer(x.double())  # the same rounded inputs, float64 maths
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 2e-6, torch.float64: 0.0}[dtype]
    scale = reference.abs().max(dim=0).values.clamp(min=1.0)
    assert ((out.double() - reference).abs() / scale).max() <= tolerance * 2


def test_gradcheck_in_float64() -> None:
    artifact = normcore.fit(DATA, features=FEATURES)
    layer = Normalization.from_artifact(artifact)
    x = torch.tensor(_matrix()[:12] * (1 + 1e-3), requires_grad=True)  # off the fitted quantiles
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradcheck(layer.inverse, (layer(x).detach().requires_grad_(True),))


def test_state_dict_round_trips_into_a_fresh_layer() -> None:
    artifact = normcore.fit({**DATA, "k": KEYS}, features=FEATURES, key="k")
    layer = Normalization.from_artifact(artifact, features=["q", "p", "z"])
    fresh = Normalization()
    fresh.load_state_dict(layer.state_dict())
    x = torch.tensor(_matrix(["q", "p", "z"]))
    assert torch.equal(fresh(x, key=KEYS.tolist()), layer(x, key=KEYS.tolist()))
    assert fresh.features == ["q", "p", "z"] and "key='k'" in repr(fresh)


@pytest.mark.parametrize("keyed", [False, True])
def test_compile_fullgraph_and_export(keyed: bool) -> None:
    artifact = normcore.fit({**DATA, "k": KEYS}, features=FEATURES, key="k" if keyed else None)
    layer = Normalization.from_artifact(artifact)
    x = torch.tensor(_matrix()[:64])
    kwargs = {"key": layer.key_index(KEYS[:64].tolist())} if keyed else {}
    expected = layer(x, **kwargs)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, **kwargs), expected, rtol=0, atol=1e-12)
    exported = torch.export.export(layer, (x,), kwargs)
    torch.testing.assert_close(exported.module()(x, **kwargs), expected, rtol=0, atol=1e-12)


def test_features_along_another_axis() -> None:
    artifact = normcore.fit({n: DATA[n] for n in ("z", "m")}, features=["z", "m:minmax"])
    x = torch.tensor(_matrix(["z", "m"]))
    along_rows = Normalization.from_artifact(artifact, axis=0)(x.T).T
    torch.testing.assert_close(along_rows, Normalization.from_artifact(artifact)(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_on_cuda() -> None:
    layer = Normalization.from_artifact(normcore.fit(DATA, features=FEATURES)).cuda()
    x = torch.tensor(_matrix(), device="cuda")
    torch.testing.assert_close(layer(x).cpu(), layer.cpu()(x.cpu()), rtol=0, atol=1e-12)


def test_clear_errors() -> None:
    layer = Normalization.from_artifact(normcore.fit({"z": DATA["z"]}))
    with pytest.raises(ValueError, match="has 2 features, expected 1"):
        layer(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="expected a floating tensor"):
        layer(torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(RuntimeError, match="from_artifact"):
        Normalization()(torch.zeros(3, 1))
    keyed = Normalization.from_artifact(normcore.fit({"z": DATA["z"], "k": KEYS}, features=["z"], key="k"))
    with pytest.raises(ValueError, match="pass key="):
        keyed(torch.zeros(3, 1, dtype=torch.float64))
