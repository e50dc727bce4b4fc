"""Local, Beam and Spark: the same artifact (statistics to 1e-12) and the same output rows.

The three engines fit and apply through the engine contract on the same multi-file
Parquet input; the local engine is the reference. The data stays below the KLL
sketch's exact size, so quantile-based parameters must agree too. States merge in a
different order on each engine, so fitted parameters may differ in the last bit:
normalized values are compared to 1e-12, every other column exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_agreement import (
    apply_with,
    assert_artifacts_agree,
    assert_round_trip,
    assert_tables_equal,
    fit_with,
    read_output,
)

FEATURES = [
    {"name": "a", "method": "zscore"},
    {"name": "b", "method": "minmax", "params": {"feature_range": [-1, 1], "clip": True}},
    {"name": "c", "method": "decimal"},
    {"name": "d", "method": "robust"},
    {"name": "big", "method": "mean"},
    {"name": "tied", "method": "quantile", "params": {"n_quantiles": 100}},
    {"name": "e", "method": "maxabs"},
    {"name": "f", "method": "quantile", "params": {"output": "normal"}},
    {"name": "g", "method": "power"},
    {"name": "h", "method": "log", "params": {"standardize": True}},
    {"name": "w", "method": "power", "params": {"method": "box-cox"}},
]
#: The same columns through the identity: the input as apply writes it (features as float64).
IDENTITY = [{"name": f["name"], "method": "identity"} for f in FEATURES]
#: Engines' maths libraries (exp, log, log1p, expm1) may differ in the last bit.
ATOL = {f["name"]: 1e-12 for f in FEATURES}


@pytest.mark.parametrize("key", [None, "k_str"], ids=["global", "keyed"])
def test_three_engines_agree(spark, engine_data: Path, tmp_path: Path, key: str | None) -> None:
    config = {"features": FEATURES, "key": key, "ddof": 1}
    reference = fit_with("local", config, engine_data)
    apply_with("local", reference, engine_data, tmp_path / "local")
    apply_with("local", fit_with("local", {"features": IDENTITY}, engine_data), engine_data, tmp_path / "input-copy")
    expected = read_output(tmp_path / "local")
    for engine in ("beam", "spark"):
        fitted = fit_with(engine, config, engine_data)
        assert fitted.engine == engine
        assert_artifacts_agree(reference, fitted, rtol=1e-12)
        counts = apply_with(engine, fitted, engine_data, tmp_path / engine)
        assert counts.rows == expected.num_rows
        assert_tables_equal(expected, read_output(tmp_path / engine), atol=ATOL)
        # ... and each engine's inverse of its own output gives back the input.
        restored = tmp_path / f"{engine}-restored"
        apply_with(engine, fitted, tmp_path / engine, restored, inverse=True)
        assert_round_trip(read_output(tmp_path / "input-copy"), read_output(restored), FEATURES)
