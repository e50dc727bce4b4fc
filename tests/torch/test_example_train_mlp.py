"""examples/train_mlp.py: does normalization pay? A few epochs, the same budget for each variant."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_mlp.py"


def test_normalization_beats_raw_features_on_the_same_budget(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("train_mlp", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--epochs", "6", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    summary, histories = results["summary"], results["histories"]
    assert summary["normalization"]["test_loss"] < summary["raw"]["test_loss"]
    assert summary["normalization"]["test_error"] <= summary["raw"]["test_error"]
    assert histories["normalization"]["train_loss"][-1] < histories["raw"]["train_loss"][-1]
    assert (tmp_path / "loss_curves.png").stat().st_size > 10_000
    assert "| normalization |" in (tmp_path / "results.md").read_text()
