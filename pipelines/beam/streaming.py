"""Streaming: statistics per window with drift against a fitted artifact, and online normalization.

* :class:`WindowedStats`: an unbounded (or bounded, timestamped) PCollection of Arrow
  record batches / tables -> one report per window and firing: the window's statistics
  (:meth:`normcore.stats.MomentsState.summary`) and their drift from the artifact
  (:mod:`normcore.stats.compare`: standardized mean shift, variance ratio and, when the
  artifact kept a quantile sketch of the feature, the PSI).
* :class:`RunningNormalize`: exponentially weighted running statistics
  (:class:`normcore.running.EwmNormalizer`) kept in per-key state, each batch
  normalized with them as it arrives.

Late data
---------
A batch belongs to the window of its element timestamp (a batch is one event in
time: give micro-batches the timestamp of their rows, or split batches by event time
upstream). With ``allowed_lateness=0`` (default) a window fires once when the watermark
passes its end, and batches that arrive later are dropped by Beam. With
``allowed_lateness=L`` seconds the window fires on time and then once more for every
late batch that arrives within ``L`` seconds after the window end; panes accumulate,
so each late report holds the statistics of every batch of the window seen so far and
replaces the earlier report (``timing`` says ``ON_TIME`` or ``LATE``, ``pane_index``
counts firings). Batches later than that are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger as triggers
from apache_beam.transforms import userstate
from apache_beam.transforms.window import WindowFn
from apache_beam.utils.timestamp import Duration
from apache_beam.utils.windowed_value import PaneInfoTiming

from normcore.artifact import Artifact
from normcore.errors import ConfigError
from normcore.running import EwmNormalizer
from normcore.stats import ColumnRequest, StatsAccumulator
from normcore.stats.compare import population_stability_index, standardized_mean_shift, variance_ratio
from normcore.stats.ewm import alpha_from_halflife, check_alpha
from normcore.stats.quantiles import QuantileSketch
from pipelines.beam.combiners import FeatureStatsCombineFn
from pipelines.beam.transforms import METRICS_NAMESPACE


def feature_drift(
    reference: dict[str, Any], column_summary: dict[str, Any], sketch: QuantileSketch | None
) -> dict[str, Any]:
    """Drift of one window's column from the artifact's entry of that feature.

    Parameters
    ----------
    reference : dict
        The artifact's feature entry (``{"stats": ..., "transform": ...}``).
    column_summary : dict
        The window's :meth:`MomentsState.summary`.
    sketch : QuantileSketch or None
        The window's sketch (for the PSI), when one was gathered.

    Returns
    -------
    dict
        ``standardized_mean_shift``, ``variance_ratio`` and ``psi`` (``None`` where the
        window has no finite value or the artifact kept no sketch).
    """
    stats = reference["stats"]
    if column_summary["count"] == 0:
        return {"standardized_mean_shift": None, "variance_ratio": None, "psi": None}
    psi = None
    if sketch is not None and "quantiles" in stats:
        psi = population_stability_index(QuantileSketch.from_dict(stats["quantiles"]), sketch)
    return {
        "standardized_mean_shift": standardized_mean_shift(stats, column_summary),
        "variance_ratio": variance_ratio(stats, column_summary),
        "psi": psi,
    }


class _ReportWindow(beam.DoFn):
    """Turns one window's merged accumulator into a report with drift metrics."""

    def __init__(self, artifact: Artifact, features: Sequence[str]) -> None:
        self._artifact = artifact
        self._features = list(features)
        self._late = Metrics.counter(METRICS_NAMESPACE, "late_window_panes")

    def process(
        self,
        accumulator: StatsAccumulator,
        window: Any = beam.DoFn.WindowParam,
        pane: Any = beam.DoFn.PaneInfoParam,
    ) -> Iterator[dict[str, Any]]:
        if pane.timing == PaneInfoTiming.LATE:
            self._late.inc()
        features = {}
        for name in self._features:
            column = accumulator.columns[name]
            summary = column.moments.summary()
            features[name] = {
                "stats": summary,
                "drift": feature_drift(self._artifact.feature(name), summary, column.sketch),
            }
        yield {
            "window_start": float(window.start),
            "window_end": float(window.end),
            "timing": PaneInfoTiming.to_string(pane.timing),
            "pane_index": pane.index,
            "rows": accumulator.rows,
            "features": features,
        }


class WindowedStats(beam.PTransform):
    """Timestamped Arrow batches -> one statistics-and-drift report per window firing.

    Parameters
    ----------
    artifact : Artifact
        The fitted reference the windows are compared with.
    window : apache_beam.transforms.window.WindowFn
        ``FixedWindows(size)`` or ``SlidingWindows(size, period)`` (seconds).
    allowed_lateness : float, default 0
        Seconds after the end of a window during which late batches still update it
        (see the module notes on late data).
    features : sequence of str, optional
        Features to report; default every feature of the artifact.

    Returns
    -------
    PCollection of dict
        ``{"window_start", "window_end", "timing", "pane_index", "rows",
        "features": {name: {"stats": {...}, "drift": {...}}}}`` (seconds since the
        epoch; ``stats`` as in the artifact, without quantiles).
    """

    def __init__(
        self,
        artifact: Artifact,
        window: WindowFn,
        allowed_lateness: float = 0,
        features: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self._artifact = artifact
        self._window = window
        self._allowed_lateness = allowed_lateness
        self._features = list(features) if features is not None else artifact.feature_names
        for name in self._features:
            artifact.feature(name)  # raises ArtifactError naming an unknown feature

    def _requests(self) -> list[ColumnRequest]:
        # A sketch per window only where the artifact has one to compute the PSI against; the
        # values measured in the space each method fits in, as the artifact records them.
        requests = []
        for name in self._features:
            quantiles = self._artifact.feature(name)["stats"].get("quantiles")
            fitted = self._artifact.transform(name)
            k = quantiles["k"] if quantiles else None
            requests.append(ColumnRequest(name, quantiles is not None, k, fitted.fit_space_map))
        return requests

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        if self._allowed_lateness:
            window_into = beam.WindowInto(
                self._window,
                trigger=triggers.AfterWatermark(late=triggers.AfterCount(1)),
                allowed_lateness=Duration(seconds=self._allowed_lateness),
                accumulation_mode=triggers.AccumulationMode.ACCUMULATING,
            )
        else:
            window_into = beam.WindowInto(self._window)
        return (
            batches
            | "Window" >> window_into
            | "CombineStats" >> beam.CombineGlobally(FeatureStatsCombineFn(self._requests())).without_defaults()
            | "CompareWithArtifact" >> beam.ParDo(_ReportWindow(self._artifact, self._features))
        )


class EwmNormalizerCoder(beam.coders.Coder):
    """Encodes an :class:`EwmNormalizer` as the UTF-8 JSON of its ``to_dict`` (state cells)."""

    def encode(self, normalizer: EwmNormalizer) -> bytes:
        """JSON bytes of ``normalizer.to_dict()``."""
        return json.dumps(normalizer.to_dict(), separators=(",", ":")).encode("utf-8")

    def decode(self, encoded: bytes) -> EwmNormalizer:
        """Inverse of :meth:`encode`."""
        return EwmNormalizer.from_dict(json.loads(encoded))

    def is_deterministic(self) -> bool:
        """Equal states encode equally."""
        return True


def _as_record_batch(element: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    if isinstance(element, pa.RecordBatch):
        return element
    return pa.RecordBatch.from_arrays([column.combine_chunks() for column in element.columns], schema=element.schema)


class _RunningNormalizeFn(beam.DoFn):
    """Per key: fold the batch into the running state, then normalize it with that state."""

    STATE = userstate.ReadModifyWriteStateSpec("ewm", EwmNormalizerCoder())

    def __init__(self, features: Sequence[str], alpha: float) -> None:
        self._features = list(features)
        self._alpha = alpha
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows_normalized")

    def process(
        self, element: tuple[Any, pa.RecordBatch | pa.Table], state: Any = beam.DoFn.StateParam(STATE)
    ) -> Iterator[tuple[Any, pa.RecordBatch]]:
        key, batch = element
        batch = _as_record_batch(batch)
        normalizer = state.read() or EwmNormalizer(self._features, self._alpha)
        normalizer.update(batch)
        state.write(normalizer)
        self._rows.inc(batch.num_rows)
        yield key, normalizer.transform_batch(batch)


class RunningNormalize(beam.PTransform):
    """``(key, batch)`` pairs -> ``(key, normalized batch)`` with exponentially weighted statistics.

    Parameters
    ----------
    features : sequence of str
        Columns to normalize; other columns pass through.
    alpha : float, optional
        Smoothing factor in (0, 1] per finite value.
    halflife : float, optional
        Alternatively, the number of values after which a weight halves.

    Notes
    -----
    The state is per key and per window (use one key, e.g. ``None``, for one global
    running state); within a key, batches are folded in arrival order and each batch is
    normalized with the statistics after folding it in (see
    :class:`normcore.running.EwmNormalizer`). The formulas live in
    :mod:`normcore.stats.ewm`; this transform only keeps the state.
    """

    def __init__(self, features: Sequence[str], alpha: float | None = None, halflife: float | None = None) -> None:
        super().__init__()
        if (alpha is None) == (halflife is None):
            raise ConfigError("RunningNormalize: give exactly one of alpha or halflife")
        self._features = list(features)
        self._alpha = check_alpha(alpha) if alpha is not None else alpha_from_halflife(halflife)

    def expand(self, keyed_batches: beam.PCollection) -> beam.PCollection:
        return keyed_batches | "EwmNormalize" >> beam.ParDo(_RunningNormalizeFn(self._features, self._alpha))
