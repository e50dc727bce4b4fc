"""Streaming: windowed statistics (TestStream, late data) and exponentially weighted normalization."""

from __future__ import annotations

import math

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import FixedWindows, SlidingWindows, TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP
from beam_support import local_pipeline

import normcore
from pipelines.beam import RunningNormalize, WindowedStats

RNG = np.random.default_rng(17)
REFERENCE = pa.table({"x": RNG.normal(10.0, 2.0, 5_000), "y": RNG.gamma(2.0, 3.0, 5_000)})


def batch(n: int, shift: float = 0.0, seed: int = 0) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0 + shift, 2.0, n)
    x[: min(n, 2)] = [np.nan, np.inf][: min(n, 2)]
    return pa.RecordBatch.from_pydict({"x": x, "y": rng.gamma(2.0, 3.0, n), "tag": [f"s{seed}"] * n})


def streaming_pipeline() -> BeamTestPipeline:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return BeamTestPipeline(runner=BundleBasedDirectRunner(), options=options, blocking=True)


def reference_report(batches: list[pa.RecordBatch], artifact: normcore.Artifact) -> dict:
    """Per-window statistics and drift with NumPy, from the raw values."""
    report = {}
    for name in ("x", "y"):
        values = np.concatenate([b.column(name).to_numpy() for b in batches])
        finite = values[np.isfinite(values)]
        reference = REFERENCE.column(name).to_numpy()
        report[name] = {
            "count": finite.size, "nan_count": int(np.isnan(values).sum()), "mean": finite.mean(),
            "var": finite.var(), "min": finite.min(), "max": finite.max(),
            "shift": (finite.mean() - reference.mean()) / reference.std(), "ratio": finite.var() / reference.var(),
        }
    return report


def check_report(got: dict, want: dict) -> None:
    for name, expected in want.items():
        stats, drift = got["features"][name]["stats"], got["features"][name]["drift"]
        assert stats["count"] == expected["count"] and stats["nan_count"] == expected["nan_count"]
        assert stats["min"] == expected["min"] and stats["max"] == expected["max"]
        assert math.isclose(stats["mean"], expected["mean"], rel_tol=1e-12)
        assert math.isclose(stats["var"], expected["var"], rel_tol=1e-10)
        assert math.isclose(drift["standardized_mean_shift"], expected["shift"], rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(drift["variance_ratio"], expected["ratio"], rel_tol=1e-9)


def test_fixed_windows_with_late_data() -> None:
    """On-time panes, an accumulating late pane within the allowed lateness, a dropped too-late batch."""
    artifact = normcore.fit(REFERENCE, sketch=True)
    a, b, c = batch(300, seed=1), batch(200, seed=2), batch(250, shift=4.0, seed=3)
    late, too_late = batch(100, seed=4), batch(50, seed=5)
    stream = (
        BeamTestStream()
        .add_elements([TimestampedValue(a, 1), TimestampedValue(b, 5), TimestampedValue(c, 12)])
        .advance_watermark_to(10)
        .add_elements([TimestampedValue(late, 7)])
        .advance_watermark_to(20)
        .advance_watermark_to(45)
        .add_elements([TimestampedValue(too_late, 3)])
        .advance_watermark_to_infinity()
    )
    expected = {
        (0.0, "ON_TIME"): reference_report([a, b], artifact),
        (0.0, "LATE"): reference_report([a, b, late], artifact),
        (10.0, "ON_TIME"): reference_report([c], artifact),
    }

    def check(reports):
        by_pane = {(r["window_start"], r["timing"]): r for r in reports}
        assert sorted(by_pane) == sorted(expected), sorted(by_pane)
        assert len(reports) == len(expected)
        for pane, want in expected.items():
            check_report(by_pane[pane], want)
        shifted, stable = by_pane[(10.0, "ON_TIME")], by_pane[(0.0, "ON_TIME")]
        assert shifted["features"]["x"]["drift"]["psi"] > 0.25 > 0.1 > stable["features"]["x"]["drift"]["psi"]
        assert by_pane[(0.0, "LATE")]["rows"] == 600 and by_pane[(0.0, "LATE")]["pane_index"] == 1

    pipeline = streaming_pipeline()
    reports = (
        pipeline
        | "Stream" >> stream
        | "WindowedStats" >> WindowedStats(artifact, FixedWindows(10), allowed_lateness=30)
    )
    assert_that(reports, check)
    pipeline.run()


def test_sliding_windows_equal_per_window_reference() -> None:
    """Bounded, timestamped batches; each batch lands in two 20 s windows sliding by 10 s."""
    artifact = normcore.fit(REFERENCE)
    timed = [(batch(120, seed=10 + i), 4.0 + 10 * i) for i in range(4)]
    expected = {}
    for start in range(-10, 40, 10):
        members = [b for b, t in timed if start <= t < start + 20]
        if members:
            expected[float(start)] = reference_report(members, artifact)

    def check(reports):
        assert sorted(r["window_start"] for r in reports) == sorted(expected)
        for report in reports:
            assert report["timing"] == "ON_TIME" and report["window_end"] == report["window_start"] + 20
            check_report(report, expected[report["window_start"]])

    pipeline = local_pipeline()
    reports = (
        pipeline
        | "Create" >> beam.Create(list(range(len(timed))))
        | "Timestamp" >> beam.Map(lambda i: TimestampedValue(timed[i][0], timed[i][1]))
        | "WindowedStats" >> WindowedStats(artifact, SlidingWindows(20, 10), features=["x", "y"])
    )
    assert_that(reports, check)
    pipeline.run()


@pytest.mark.parametrize("halflife", [3.0, 250.0])
def test_running_normalize_matches_pandas_ewm(halflife: float) -> None:
    """Per key, in arrival order: each batch normalized by the EWM statistics including it."""
    sizes = {"k1": [50, 1, 120, 30], "k2": [80, 40]}
    batches = {key: [batch(n, seed=100 + i + (50 if key == "k2" else 0)) for i, n in enumerate(ns)]
               for key, ns in sizes.items()}
    alpha = 1 - 0.5 ** (1 / halflife)
    expected = {}
    for parts in batches.values():
        history = []
        for part in parts:
            history.append(part.column("x").to_numpy())
            values = pd.Series(np.concatenate(history))
            finite = values[np.isfinite(values)]
            mean = finite.ewm(alpha=alpha, adjust=True).mean().iloc[-1]
            std = math.sqrt(finite.ewm(alpha=alpha, adjust=True).var(bias=True).iloc[-1])
            x = part.column("x").to_numpy()
            expected[part.column("tag")[0].as_py()] = np.where(np.isfinite(x), (x - mean) / std, x)

    stream = BeamTestStream()
    for i in range(4):
        for key, parts in batches.items():
            if i < len(parts):
                stream = stream.add_elements([(key, parts[i])])
    stream = stream.advance_watermark_to(MAX_TIMESTAMP)

    def check(elements):
        assert len(elements) == len(expected)
        for _, normalized in elements:
            tag = normalized.column("tag")[0].as_py()
            np.testing.assert_allclose(normalized.column("x").to_numpy(), expected[tag], rtol=1e-9, atol=1e-12)
            assert normalized.column("tag").to_pylist() == [tag] * normalized.num_rows

    pipeline = streaming_pipeline()
    normalized = pipeline | "Stream" >> stream | "RunningNormalize" >> RunningNormalize(["x"], halflife=halflife)
    assert_that(normalized, check)
    pipeline.run()
