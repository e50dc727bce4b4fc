"""``normcore report``: one self-contained HTML page of a dataset before and after normalization.

Two streaming passes over the raw data (memory bounded by the batch size):

1. statistics of every feature before (in the space its method fits in, as the artifact
   records them: the logged values of a ``log`` feature) and after the artifact's transform
   (:class:`~normcore.stats.FeatureStatsCombiner` with KLL sketches) and the
   conformity of the normalized values (:class:`~normcore.quality.conformity.ConformityCombiner`);
2. histograms over the 0.5th-99.5th percentile range of each side (values beyond
   land in the end bins; how many is written under the plot).

Plots are PNGs rendered by matplotlib's Agg backend and embedded as ``data:`` URIs;
styles are inline. The page loads nothing from anywhere else. A drift report
(``normcore drift --report``) made with the same artifact can be included.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from normcore.apply import BatchNormalizer
from normcore.arrays import column_as_float64
from normcore.artifact import Artifact
from normcore.errors import ConfigError
from normcore.io import InputSource, require_rows
from normcore.paths import read_json
from normcore.quality.checks import expected_ranges, require_features
from normcore.quality.conformity import ConformityCombiner
from normcore.quality.drift import REPORT_FILE as DRIFT_FILE
from normcore.stats import ColumnRequest, ColumnStats, FeatureStatsCombiner
from normcore.stats.combiner import ColumnsAccumulator
from normcore.text import number

#: Recognises a page this module wrote (``normcore report`` replaces only those).
GENERATOR = rb'<meta name="generator" content="normcore">'
#: Histogram bins per side.
BINS = 40
#: Percentiles bounding the histograms (tails beyond fall into the end bins).
TAILS = (0.5, 99.5)
#: Sketch size of the report's own statistics (rank error ~1 %, enough for bin edges).
_SKETCH_K = 200

_STYLE = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d2433;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid #dde3ee;padding-bottom:4px}
.meta{color:#5a6478;font-size:13px}
.kpi{font-size:16px;margin:12px 0;padding:10px 14px;background:#f1f5fb;border-radius:6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d5dbe6;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left} th{background:#eef2f8}
.ok{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600} img{max-width:100%;height:auto}
.note{color:#5a6478;font-size:12px}
"""


def load_drift(path: str | Path, artifact: Artifact) -> dict[str, Any]:
    """Read a drift report (``drift.json`` or its directory) made with ``artifact``.

    Raises
    ------
    ConfigError
        Missing or unreadable file, not a drift report, or made with another artifact.
    """
    location = Path(path)
    if location.is_dir():
        location = location / DRIFT_FILE
    if not location.is_file():
        raise ConfigError(f"option --drift: '{path}' is neither a drift report nor a directory holding {DRIFT_FILE}")
    try:
        document = read_json(location)
    except ValueError as exc:
        raise ConfigError(f"option --drift: '{location}' {exc}") from None
    if not isinstance(document, dict) or document.get("format") != "normcore.drift":
        raise ConfigError(f"option --drift: '{location}' is not a normcore drift report (format 'normcore.drift')")
    if document.get("artifact_checksum") != artifact.checksum:
        raise ConfigError(
            f"option --drift: '{location}' was made with another artifact "
            f"({document.get('artifact_checksum')}, this one is {artifact.checksum})"
        )
    return document


def _requests(names: list[str], maps: Mapping[str, Any] | None = None) -> list[ColumnRequest]:
    return [ColumnRequest(name, True, _SKETCH_K, (maps or {}).get(name)) for name in names]


def _edges(column: ColumnStats) -> np.ndarray:
    low, high = column.sketch.percentiles(list(TAILS))
    if not high > low:
        centre = float(column.moments.min)
        low, high = centre - 0.5, centre + 0.5
    return np.linspace(low, high, BINS + 1)


def _histogram(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, int, int]:
    finite = values[np.isfinite(values)]
    below = int(np.count_nonzero(finite < edges[0]))
    above = int(np.count_nonzero(finite > edges[-1]))
    # The edges are np.linspace's (_edges), as NumPy's own for a bin count and range: given
    # those, it bins by arithmetic (checked against the edges) instead of sorting each block.
    counts, _ = np.histogram(np.clip(finite, edges[0], edges[-1]), bins=edges.size - 1, range=(edges[0], edges[-1]))
    return counts, below, above


class _Histograms:
    """Per-feature bin counts of one side (before or after), filled batch by batch."""

    def __init__(self, edges: Mapping[str, np.ndarray], maps: Mapping[str, Any] | None = None) -> None:
        self.edges = dict(edges)
        self.maps = {name: function for name, function in (maps or {}).items() if function is not None}
        self.counts = {name: np.zeros(BINS, dtype=np.int64) for name in edges}
        self.tails = {name: [0, 0] for name in edges}

    def add(self, batch: pa.RecordBatch) -> None:
        for name, edges in self.edges.items():
            values, _ = column_as_float64(batch.column(name))
            if name in self.maps:
                values = self.maps[name](values)
            counts, below, above = _histogram(values, edges)
            self.counts[name] += counts
            self.tails[name][0] += below
            self.tails[name][1] += above

    def merge(self, other: _Histograms) -> _Histograms:
        """Add ``other``'s counts (the same edges) into this object and return it."""
        for name in self.edges:
            self.counts[name] += other.counts[name]
            self.tails[name] = [mine + theirs for mine, theirs in zip(self.tails[name], other.tails[name], strict=True)]
        return self


def _plot(name: str, before: _Histograms, after: _Histograms, method: str, space: str | None) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 2.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for ax, side, title, color in (
        (axes[0], before, f"before ({space})" if space else "before", "#5b7db1"),
        (axes[1], after, f"after ({method})", "#d9822b"),
    ):
        edges = side.edges[name]
        ax.stairs(side.counts[name], edges, fill=True, color=color, alpha=0.85)
        ax.set_title(f"{name}: {title}", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.set_ylabel("rows", fontsize=8)
        below, above = side.tails[name]
        if below or above:
            ax.text(
                0.99,
                0.97,
                f"{below} below / {above} above range",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any) -> str:
    return html.escape(value) if isinstance(value, str) else number(value)


def _stats_table(fitted: Mapping[str, Any], before: ColumnStats, after: ColumnStats, space: str | None) -> str:
    rows = ("count", "null_count", "nan_count", "inf_count", "mean", "std", "min", "max")
    sides = (fitted, before.moments.summary(), after.moments.summary())
    where = f" ({html.escape(space)})" if space else ""
    cells = [
        f"<tr><th>statistic</th><th>fitted (artifact){where}</th><th>this input{where}</th><th>normalized</th></tr>"
    ]
    for stat in rows:
        cells.append(
            f"<tr><td>{stat}</td>" + "".join(f"<td>{_number(side.get(stat))}</td>" for side in sides) + "</tr>"
        )
    for percent in (1, 50, 99):
        values = [
            (fitted.get("quantiles") or {}).get("percentiles", {}).get(str(percent)),
            float(before.sketch.percentiles([percent])[0]),
            float(after.sketch.percentiles([percent])[0]),
        ]
        cells.append(f"<tr><td>p{percent} (approx.)</td>" + "".join(f"<td>{_number(v)}</td>" for v in values) + "</tr>")
    return "<table>" + "".join(cells) + "</table>"


def _drift_table(entry: Mapping[str, Any]) -> str:
    verdict = (
        f'<span class="bad">drift: {html.escape("; ".join(entry["reasons"]))}</span>'
        if entry["drifted"]
        else '<span class="ok">no drift</span>'
    )
    psi = entry["psi"] if entry["psi"] is not None else "skipped (no sketch)"
    return (
        "<table><tr><th>drift</th><th>mean shift</th><th>variance ratio</th><th>PSI</th><th>verdict</th></tr>"
        f"<tr><td>vs. fit</td><td>{_number(entry['mean_shift'])}</td><td>{_number(entry['variance_ratio'])}</td>"
        f"<td>{_number(psi)}</td><td>{verdict}</td></tr></table>"
    )


def build_report(
    artifact: Artifact,
    artifact_path: str,
    source: InputSource,
    drift: Mapping[str, Any] | None = None,
    batch_size: int = 131_072,
    workers: int = 1,
) -> str:
    """The HTML page for ``source`` (raw data) and ``artifact``, its two passes (statistics,
    then histograms) reading the fragments on ``workers`` threads; the shares merge in
    fragment order, so the page is the same for any number.

    Raises
    ------
    ArtifactError
        ``source`` lacks a fitted column.
    InputError
        ``source`` has no rows.
    """
    require_features(artifact, source, "input")
    names = artifact.feature_names
    columns = names + ([artifact.key] if artifact.key and artifact.key not in names else [])
    normalizer = BatchNormalizer(artifact)
    ranges = expected_ranges(artifact)
    # The input is described in the space each method fits in, as the artifact describes it.
    maps = {name: artifact.transform(name).fit_space_map for name in names}
    spaces = {name: artifact.transform(name).method.space for name in names}
    raw_stats, normalized_stats = FeatureStatsCombiner(_requests(names, maps)), FeatureStatsCombiner(_requests(names))
    conformity = ConformityCombiner(ranges)
    combiners = (raw_stats, normalized_stats, conformity)

    def measure(batches: Iterable[pa.RecordBatch]) -> tuple[ColumnsAccumulator, ...]:
        before, after, counts = (combiner.create_accumulator() for combiner in combiners)
        for batch in batches:
            normalized, _ = normalizer.transform_batch(batch)
            raw_stats.add_batch(before, batch)
            normalized_stats.add_batch(after, normalized)
            conformity.add_batch(counts, normalized)
        return before, after, counts

    shares = source.map_fragments(measure, columns, batch_size, workers)
    before, after, counts = (
        combiner.merge_accumulators([combiner.create_accumulator(), *(share[side] for share in shares)])
        for side, combiner in enumerate(combiners)
    )
    require_rows(before.rows, source.path)
    edges_before = {n: _edges(before.columns[n]) for n in names}
    edges_after = {n: _edges(after.columns[n]) for n in names}

    def count(batches: Iterable[pa.RecordBatch]) -> tuple[_Histograms, _Histograms]:
        sides = _Histograms(edges_before, maps), _Histograms(edges_after)
        for batch in batches:
            sides[0].add(batch)
            sides[1].add(normalizer.transform_batch(batch)[0])
        return sides

    hist_before, hist_after = _Histograms(edges_before, maps), _Histograms(edges_after)
    for share_before, share_after in source.map_fragments(count, columns, batch_size, workers):
        hist_before.merge(share_before)
        hist_after.merge(share_after)
    share = conformity.extract_output(counts)
    sections = []
    for name in names:
        entry = artifact.feature(name)
        method = entry["transform"]["method"]
        feature = share["features"][name]
        low, high = ranges[name]
        level = "ok" if feature["conformity"] in (None, 1.0) else "bad"
        conform = "-" if feature["conformity"] is None else f"{100 * feature['conformity']:.2f}%"
        parts = [
            f'<h2 id="{html.escape(name)}">{html.escape(name)} <span class="meta">({html.escape(method)})</span></h2>',
            f'<img alt="histograms of {html.escape(name)}" '
            f'src="{_plot(name, hist_before, hist_after, method, spaces[name])}">',
            f'<p>conformity: <span class="{level}">{conform}</span> of {feature["values"]} normalized values in '
            f"[{_number(low)}, {_number(high)}] ({feature['missing']} missing)</p>",
            _stats_table(entry["stats"], before.columns[name], after.columns[name], spaces[name]),
        ]
        if drift is not None and name in drift.get("features", {}):
            parts.append(_drift_table(drift["features"][name]))
        sections.append("\n".join(parts))
    overall = "-" if share["conformity"] is None else f"{100 * share['conformity']:.2f}%"
    drift_line = ""
    if drift is not None:
        drifted = drift.get("drifted") or []
        drift_line = (
            f'<div class="kpi">drift ({html.escape(str(drift.get("input")))}): '
            + (
                f'<span class="bad">{html.escape(", ".join(drifted))}</span>'
                if drifted
                else '<span class="ok">none</span>'
            )
            + "</div>"
        )
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="normcore">
<title>normcore report: {html.escape(source.path)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>normcore report</h1>
<p class="meta">input {html.escape(source.path)} ({before.rows} rows) &middot;
artifact {html.escape(artifact_path)} ({html.escape(artifact.checksum)}, fitted on {artifact.rows} rows
by the {html.escape(artifact.engine)} engine) &middot; {created}</p>
<div class="kpi">input range conformity: <b>{overall}</b> ({share["in_range"]} of {share["values"]} normalized values
inside their feature's expected range)</div>
{drift_line}
<p class="note">Histograms span the 0.5th to 99.5th percentile of each side; values beyond fall into the end bins.
Percentiles marked approx. come from KLL sketches.</p>
{"".join(sections)}
</body></html>
"""
