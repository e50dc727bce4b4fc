"""The one-screen summary of a validation and its exit-1 message."""

from __future__ import annotations

from typing import Any

from normcore.quality.checks import ROW_COUNT
from normcore.text import number


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def render_summary(outcome: Any) -> str:
    """The one-screen summary: rows, one line per feature, pass-through, KPI, verdict."""
    request = outcome.request
    lines = [
        f"validate: {request.input} against {request.artifact_path} ({request.engine} engine; {outcome.evaluated_on})",
    ]
    row_check = next(outcome.run.results[i] for i, c in enumerate(outcome.plan.checks) if c.kind is ROW_COUNT)
    verdict = "ok" if row_check.success else "FAILED"
    lines.append(f"rows: {outcome.rows} (expected {outcome.expected_rows} from {outcome.rows_origin}): {verdict}")
    header = ("feature", "method", "expected range", "conformity", "observed range", "checks")
    table = [header]
    for feature in outcome.features:
        low, high = feature.expected_range
        observed = (
            "-" if feature.observed is None else f"[{number(feature.observed[0])}, {number(feature.observed[1])}]"
        )
        table.append(
            (
                feature.name,
                feature.method,
                f"[{number(low)}, {number(high)}]",
                _percent(feature.conformity),
                observed,
                "pass" if feature.passed else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.extend("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
    if outcome.passthrough:
        failed = sorted({f.column for f in outcome.failures if f.column in outcome.passthrough})
        state = f"changed: {', '.join(failed)}" if failed else "unchanged"
        lines.append(f"pass-through columns ({', '.join(outcome.passthrough)}): {state}")
    lines.extend(f"note: {note}" for note in outcome.plan.notes)
    in_range = sum(f.in_range for f in outcome.features)
    lines.append(f"input range conformity: {_percent(outcome.conformity)} ({in_range} of {outcome.values} values)")
    total = len(outcome.plan.checks)
    if outcome.success:
        lines.append(f"result: PASS ({total} of {total} expectations)")
    else:
        lines.append(f"result: FAIL ({len(outcome.failures)} of {total} expectations failed)")
        lines.extend(f"  {failure}" for failure in outcome.failures)
    if outcome.report:
        lines.append(f"report: {outcome.report['json']} and {outcome.report['data_docs']}")
    return "\n".join(lines)


def failure_message(outcome: Any) -> str:
    """One line naming each failed column and expectation (the exit-1 message)."""
    named = "; ".join(f"{f.column or '(table)'}: {f.expectation}" for f in outcome.failures)
    return f"validation of '{outcome.request.input}' failed: {named}"
