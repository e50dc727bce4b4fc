"""Human-readable views of an artifact (``normcore inspect``)."""

from __future__ import annotations

from normcore.artifact import Artifact
from normcore.text import number


def render_artifact(artifact: Artifact, title: str, key: str | None = None) -> str:
    """A plain-text table of every feature: method, counts, moments, transform."""
    document = artifact.document
    lines = [
        f"{title}: {document['format']} v{document['version']}, engine {document['engine']}, "
        f"created {document['created_at']}, {artifact.rows} rows, ddof {artifact.ddof}",
        f"checksum {artifact.checksum}",
    ]
    if artifact.key is not None:
        lines.append(f"key '{artifact.key}': {len(artifact.key_values)} values" + (f"; showing '{key}'" if key else ""))
    header = ("feature", "method", "count", "null", "nan", "inf", "mean", "std", "min", "max", "transform")
    rows = [header]
    for name in artifact.feature_names:
        entry = artifact.feature(name, key)
        stats, transform = entry["stats"], entry["transform"]
        rows.append(
            (
                name,
                transform["method"],
                *(
                    number(stats[s])
                    for s in ("count", "null_count", "nan_count", "inf_count", "mean", "std", "min", "max")
                ),
                artifact.transform(name, key).describe(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
