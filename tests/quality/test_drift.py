"""``normcore drift``: measures against NumPy, shifted samples flagged, fresh samples not."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from normcore.artifact import load_artifact
from normcore.cli import main
from normcore.config import DriftConfig
from normcore.io import open_input
from normcore.quality.drift import measure_drift
from normcore.stats.compare import PSI_EPSILON
from quality.quality_support import quality_table, write_config

#: Latency is Pareto(1.5): its variance is infinite, so its variance ratio is not compared.
HEAVY_TAIL = {"features": {"latency": {"variance_ratio": [0, math.inf]}}}


def _drift(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["drift", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _psi_reference(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.percentile(reference, np.linspace(0, 100, bins + 1)[1:-1]))
    expected = np.diff(np.mean(reference[:, None] <= edges, axis=0), prepend=0.0, append=1.0)
    actual = np.diff(np.mean(current[:, None] <= edges, axis=0), prepend=0.0, append=1.0)
    expected, actual = np.maximum(expected, PSI_EPSILON), np.maximum(actual, PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_measures_match_numpy(tmp_path, capsys):
    rng = np.random.default_rng(4)
    reference, current = rng.gamma(2.0, 3.0, 1_500), rng.gamma(2.0, 3.3, 1_200) + 0.4  # sketches stay exact
    pq.write_table(pa.table({"x": reference}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": current}), tmp_path / "new.parquet")
    artifact = tmp_path / "a.json"
    assert main(["fit", str(tmp_path / "ref.parquet"), "--artifact", str(artifact), "--sketch"]) == 0
    report = tmp_path / "report"
    code, out, err = _drift(capsys, str(tmp_path / "new.parquet"), "--artifact", str(artifact), "--report", str(report))
    document = json.loads((report / "drift.json").read_text())
    measures = document["features"]["x"]
    assert measures["mean_shift"] == pytest.approx((current.mean() - reference.mean()) / reference.std(), rel=1e-9)
    assert measures["variance_ratio"] == pytest.approx(current.var() / reference.var(), rel=1e-9)
    assert measures["psi"] == pytest.approx(_psi_reference(reference, current), rel=1e-9)
    assert measures["drifted"] == (code == 1) == (document["drifted"] == ["x"])
    assert document["artifact_checksum"] == load_artifact(artifact).checksum


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    pq.write_table(quality_table(3_000, seed=5), root / "ref.parquet")
    artifact = root / "artifact.json"
    config = write_config(root / "job.yaml", drift=HEAVY_TAIL)
    assert (
        main(["fit", str(root / "ref.parquet"), "--artifact", str(artifact), "--config", str(config), "--sketch"]) == 0
    )
    return root, artifact, config


def test_shifted_sample_is_flagged_and_fresh_sample_is_not(reference, capsys):
    root, artifact, config = reference
    pq.write_table(quality_table(3_000, seed=77), root / "fresh.parquet")
    pq.write_table(quality_table(3_000, seed=78, shift=0.5), root / "shifted.parquet")
    code, out, _ = _drift(capsys, str(root / "fresh.parquet"), "--artifact", str(artifact), "--config", str(config))
    assert code == 0 and "result: no drift" in out
    code, out, err = _drift(capsys, str(root / "shifted.parquet"), "--artifact", str(artifact), "--config", str(config))
    assert code == 1
    assert "result: DRIFT in price, rate, latency, score" in out
    assert err.strip() == f"check failed: drift in '{root / 'shifted.parquet'}': feature(s) price, rate, latency, score"


def test_no_false_positive_over_20_fresh_samples(reference):
    root, artifact_path, _ = reference
    artifact = load_artifact(artifact_path)
    flagged = {}
    for seed in range(100, 120):
        pq.write_table(quality_table(3_000, seed=seed), root / "fresh.parquet")
        source = open_input(str(root / "fresh.parquet"))
        default = measure_drift(artifact, source, DriftConfig(), str(artifact_path))
        tuned = measure_drift(artifact, source, DriftConfig.model_validate(HEAVY_TAIL), str(artifact_path))
        assert tuned.drifted == [], (seed, [f.reasons for f in tuned.features])
        for feature in default.features:
            if feature.drifted:
                flagged.setdefault(feature.name, set()).update(r.split(" ")[0] for r in feature.reasons)
    # With the defaults only the infinite-variance feature ever drifts, on its variance ratio.
    assert flagged in ({}, {"latency": {"variance"}})


def test_feature_without_sketch_skips_psi(tmp_path, capsys):
    table = quality_table(1_000, seed=2)
    pq.write_table(table, tmp_path / "ref.parquet")
    artifact = tmp_path / "a.json"
    assert (
        main(["fit", str(tmp_path / "ref.parquet"), "--artifact", str(artifact), "--features", "score,latency:robust"])
        == 0
    )
    report = tmp_path / "report"
    code, out, _ = _drift(capsys, str(tmp_path / "ref.parquet"), "--artifact", str(artifact), "--report", str(report))
    assert code == 0
    score_line = next(line for line in out.splitlines() if line.startswith("score"))
    assert "no sketch in the artifact: PSI skipped" in score_line
    features = json.loads((report / "drift.json").read_text())["features"]
    assert features["score"]["psi"] is None and features["score"]["psi_skipped"]
    assert features["latency"]["psi"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["log", "power"])
def test_drift_compares_in_the_space_the_method_fits_in(tmp_path, capsys, method):
    """A log / power feature's statistics are of the mapped values; new data is mapped the same
    way before it is compared (raw against logged would be a huge 'drift')."""
    rng = np.random.default_rng(8)
    reference, current = rng.lognormal(2.0, 1.0, 1_500), rng.lognormal(2.0, 1.0, 1_200) * 1.5
    pq.write_table(pa.table({"x": reference}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"x": current}), tmp_path / "new.parquet")
    artifact = tmp_path / "a.json"
    assert main(["fit", str(tmp_path / "ref.parquet"), "--artifact", str(artifact), "--sketch",
                 "--features", f"x:{method}"]) == 0  # fmt: skip
    report = tmp_path / "report"
    _drift(capsys, str(tmp_path / "new.parquet"), "--artifact", str(artifact), "--report", str(report))
    measures = json.loads((report / "drift.json").read_text())["features"]["x"]
    space = load_artifact(artifact).transform("x").fit_space
    mapped_reference, mapped_current = space(reference), space(current)
    expected_shift = (mapped_current.mean() - mapped_reference.mean()) / mapped_reference.std()
    assert measures["mean_shift"] == pytest.approx(expected_shift, rel=1e-9)
    assert measures["variance_ratio"] == pytest.approx(mapped_current.var() / mapped_reference.var(), rel=1e-9)
    assert measures["psi"] == pytest.approx(_psi_reference(mapped_reference, mapped_current), rel=1e-9)
