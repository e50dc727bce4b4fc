"""The artifact file: checksum as specified, verification order, round trip."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import normcore
from normcore.artifact import load_artifact
from normcore.errors import ArtifactError


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(5, 2, 300), "b": rng.lognormal(0, 1, 300), "g": rng.integers(0, 3, 300)}
    artifact = normcore.fit(data, features="a,b:robust", key="g")
    path = tmp_path / "stats.json"
    artifact.save(path)
    return path


def _independent_checksum(document: dict) -> str:
    body = {k: v for k, v in document.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_checksum_follows_the_interface_formula(saved: Path) -> None:
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["checksum"] == _independent_checksum(document)
    assert document["format"] == "normcore.artifact" and document["version"] == 1


def test_round_trip_keeps_every_field(saved: Path) -> None:
    loaded = load_artifact(saved)
    assert loaded.document == json.loads(saved.read_text(encoding="utf-8"))
    assert loaded.key == "g" and loaded.key_values == ["0", "1", "2"]
    assert [p.name for p in saved.parent.iterdir()] == ["stats.json"], "no temporary file left behind"


def _rewrite(path: Path, change, recompute: bool = True) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    if recompute:
        document["checksum"] = _independent_checksum(document)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "recompute", "message"),
    [
        (lambda d: d.update(format="other"), True, "format is 'other'"),
        (lambda d: d.update(version=2), True, "version 2 is not supported"),
        (lambda d: d["features"]["a"]["stats"].update(mean=1.0), False, "checksum mismatch"),
        (lambda d: d.pop("checksum"), False, "checksum is missing"),
        (lambda d: d["features"]["a"]["stats"].pop("var"), True, "'features.a.stats.var' is missing"),
        (lambda d: d.pop("rows"), True, "required field 'rows' is missing"),
        (lambda d: d["features"]["b"]["transform"].pop("scale"), True, "features.b.transform"),
        (lambda d: d.pop("keys"), True, "'keys' is missing"),
    ],
)
def test_load_rejects_with_the_first_failing_check(saved: Path, change, recompute: bool, message: str) -> None:
    _rewrite(saved, change, recompute)
    with pytest.raises(ArtifactError, match=message) as caught:
        load_artifact(saved)
    assert str(saved) in str(caught.value)


def test_format_is_checked_before_version_and_checksum(saved: Path) -> None:
    _rewrite(saved, lambda d: d.update(format="x", version=9), recompute=False)
    with pytest.raises(ArtifactError, match="format"):
        load_artifact(saved)


@pytest.mark.parametrize("content", ["{not json", "", "\x00\x01", "[1, 2]"])
def test_non_json_is_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ArtifactError, match="bad.json"):
        load_artifact(path)
