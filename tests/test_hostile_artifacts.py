"""Hostile artifacts: any field of a valid artifact replaced by anything (checksum recomputed).

Loading either refuses with one ArtifactError naming a field, or gives an artifact whose
transforms map finite inputs to finite outputs, both ways; never another exception. The
same holds through the CLI (exit 0 or 2, one ``error:`` line).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normcore
from normcore.artifact import compute_checksum, parse_artifact
from normcore.cli import main
from normcore.errors import ArtifactError

RNG = np.random.default_rng(17)
DATA = {
    "z": RNG.normal(5.0, 2.0, 400),
    "m": RNG.uniform(-3.0, 9.0, 400),
    "d": RNG.normal(0.0, 1e5, 400),
    "q": RNG.lognormal(0.0, 1.0, 400),
    "n": RNG.normal(0.0, 1.0, 400),
    "p": RNG.lognormal(1.0, 1.0, 400),
    "l": RNG.standard_t(3.0, 400) * 50,
    "r": RNG.exponential(3.0, 400),
}
FEATURES = [
    {"name": "z", "method": "zscore"},
    {"name": "m", "method": "minmax", "params": {"feature_range": [-1, 1], "clip": True}},
    {"name": "d", "method": "decimal"},
    {"name": "q", "method": "quantile", "params": {"n_quantiles": 50}},
    {"name": "n", "method": "quantile", "params": {"n_quantiles": 50, "output": "normal"}},
    {"name": "p", "method": "power"},
    {"name": "l", "method": "log", "params": {"standardize": True}},
    {"name": "r", "method": "robust"},
]
#: Finite probes, with extremes: every transform must keep them finite both ways.
PROBES = np.array([0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1e-300, 3.7, -12.5, 1e6, -1e6, 1e300, -1e300,
                   1.7976931348623157e308, -1.7976931348623157e308])  # fmt: skip


@pytest.fixture(scope="module")
def document() -> dict:
    return normcore.fit(DATA, features=FEATURES, sketch=True).document


def _paths(value, prefix=()):
    """Every path into a JSON document (dict keys, list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            yield from _paths(child, (*prefix, index))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -1.0, 1e-320, 1e308, -1e308, 2.0, 1e6])
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)


def _tampered(document: dict, path: tuple, value) -> dict:
    tampered = copy.deepcopy(document)
    tampered.pop("checksum")
    if not path:
        return {"checksum": "x"}
    target = tampered
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        tampered["checksum"] = compute_checksum(tampered)
    except (TypeError, ValueError):
        tampered["checksum"] = "not computable"
    return tampered


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_tampered_artifact_is_refused_or_safe(document: dict, data) -> None:
    paths = [p for p in _paths(document) if p]
    path = data.draw(st.sampled_from(paths))
    tampered = _tampered(document, path, data.draw(JSON_VALUES))
    try:
        artifact = parse_artifact(json.loads(json.dumps(tampered)), "fuzzed.json")
    except ArtifactError as exc:
        assert str(exc).startswith("artifact 'fuzzed.json'"), exc
        return
    for name in artifact.feature_names:
        fitted = artifact.transform(name)
        forward = fitted.forward(PROBES)
        assert np.all(np.isfinite(forward)), (path, name, forward)
        assert np.all(np.isfinite(fitted.inverse(forward))), (path, name)
        assert np.all(np.isfinite(fitted.inverse(PROBES))), (path, name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_cli_never_raises_on_a_tampered_artifact(document: dict, tmp_path_factory, data) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    np.save(root / "unused.npy", np.zeros(1))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({name: values for name, values in DATA.items()}), root / "data.parquet")
    path = data.draw(st.sampled_from([p for p in _paths(document) if p]))
    (root / "a.json").write_text(json.dumps(_tampered(document, path, data.draw(JSON_VALUES))))
    code = main(["apply", str(root / "data.parquet"), "--artifact", str(root / "a.json"), "--output",
                 str(root / "out")])  # fmt: skip
    assert code in (0, 2)
    if code == 0:
        import pyarrow.dataset as ds

        table = ds.dataset(root / "out").to_table()
        for name in DATA:
            assert np.all(np.isfinite(table.column(name).to_numpy())), name


def _transform(name: str):
    return lambda document: document["features"][name]["transform"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: _transform("z")(d).update(scale=0.0), "features.z.transform.scale: expected a number > 0"),
        (lambda d: _transform("z")(d).update(scale=-2.0), "features.z.transform.scale: expected a number > 0"),
        (lambda d: _transform("z")(d).update(shift="1"), "features.z.transform.shift: expected a number"),
        (lambda d: _transform("q")(d).update(quantiles=[]), "features.q.transform.quantiles: expected a list"),
        (lambda d: _transform("q")(d)["quantiles"].reverse(), "non-decreasing"),
        (lambda d: _transform("d")(d).update(exponent=10**6), "features.d.transform.exponent"),
        (lambda d: _transform("p")(d).update(method="powr"), "features.p.transform.method: 'powr'"),
        (lambda d: _transform("m")(d)["params"].update(clip="maybe"), "features.m.transform.params.clip"),
        (lambda d: d["features"]["z"]["stats"].update(count=-1), "features.z.stats.count"),
        (lambda d: d.update(rows="many"), "rows: expected a non-negative integer"),
        (lambda d: d["features"]["z"].update(stats={"nested": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}), "nested more than 12"),
    ],
)
def test_each_field_is_checked_and_named(document: dict, change, message: str) -> None:
    tampered = copy.deepcopy(document)
    tampered.pop("checksum")
    change(tampered)
    tampered["checksum"] = compute_checksum(tampered)
    with pytest.raises(ArtifactError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_artifact(tampered, "a.json")


def test_json_nested_beyond_the_parser_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["inspect", str(tmp_path / "deep.json")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: artifact '{tmp_path / 'deep.json'}' is nested too deeply"
    ]
