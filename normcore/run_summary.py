"""The KPIs of one ``normcore run``: its normalization latency and its cost per processed unit.

A :class:`RunMeter` starts with the command and reads, at the end, the wall clock, the CPU
time of this process and of its finished child processes (``getrusage``), and the time
the engine's tasks ran in processes that are not our children (Spark executors, read from
Spark's status store: the engine's ``task_seconds`` hook). :func:`summary_document` turns
them, the rows written and the validation's input range conformity into the JSON that
``--summary`` writes (format ``normcore.run-summary``), and :func:`render_run_summary`
into the line ``run`` prints.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from normcore.paths import Target, file_starts_with

#: The ``format`` field of a summary file (a summary path may only replace such a file).
FORMAT = "normcore.run-summary"

is_summary_file = file_starts_with(rb'"format"\s*:\s*"normcore\.run-summary"')


def summary_target(path: str) -> Target:
    """The summary file ``path`` as a write :class:`~normcore.paths.Target`: it replaces a
    previous run summary, never any other file."""
    return Target("--summary", path, "file", overwrite=True, ours=is_summary_file, what="run summary")


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have exited."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class RunMeter:
    """Wall clock, CPU and engine task time since :meth:`start`.

    ``task_seconds`` is the engine's cumulative task time outside this process tree
    (None where the engine has none, or cannot tell, as on Spark Connect).
    """

    wall_start: float
    cpu_start: float
    task_seconds: Callable[[], float | None] | None = None
    tasks_start: float = 0.0

    @classmethod
    def start(cls) -> RunMeter:
        """Start measuring now."""
        return cls(time.perf_counter(), process_cpu_seconds())

    def watch_tasks(self, task_seconds: Callable[[], float | None] | None) -> None:
        """Count the engine's task time from now on (before the engine runs anything)."""
        self.task_seconds = task_seconds
        self.tasks_start = (task_seconds() if task_seconds else None) or 0.0

    def measure(self) -> tuple[float, float, float | None]:
        """``(wall seconds, CPU seconds of this process tree, engine task seconds or None)``."""
        wall = time.perf_counter() - self.wall_start
        cpu = process_cpu_seconds() - self.cpu_start
        tasks = self.task_seconds() if self.task_seconds else None
        return wall, cpu, None if tasks is None else tasks - self.tasks_start


def summary_document(
    meter: RunMeter,
    *,
    engine: str,
    rows: int,
    conformity: float | None,
    artifact: str,
    output: str,
    report: str | None,
) -> dict[str, Any]:
    """The run's KPIs.

    Returns
    -------
    dict
        ``rows`` written; ``wall_s`` of the whole command; ``rows_per_s`` = rows / wall_s;
        ``cpu_s`` of this process tree plus ``executor_task_s`` (Spark's executors' task
        time, null where unknown); ``cpu_s_per_million_rows`` = their sum per 10^6 rows;
        ``conformity_pct``, the validation's input range conformity in percent (null when
        validation did not run); where the ``artifact``, ``output`` and ``report`` are.
    """
    wall, cpu, tasks = meter.measure()
    spent = cpu + (tasks or 0.0)
    return {
        "format": FORMAT,
        "engine": engine,
        "rows": rows,
        "wall_s": wall,
        "rows_per_s": rows / wall if wall > 0 else None,
        "cpu_s": cpu,
        "executor_task_s": tasks,
        "cpu_s_per_million_rows": spent * 1e6 / rows if rows else None,
        "conformity_pct": None if conformity is None else 100.0 * conformity,
        "artifact": artifact,
        "output": output,
        "report": report,
    }


def render_run_summary(document: dict[str, Any]) -> str:
    """The summary as the line ``normcore run`` prints."""
    parts = [f"run: {document['rows']} rows in {document['wall_s']:.2f} s"]
    if document["rows_per_s"] is not None:
        parts.append(f"{document['rows_per_s']:,.0f} rows/s")
    if document["cpu_s_per_million_rows"] is not None:
        where = "" if document["executor_task_s"] is None else " incl. executor tasks"
        parts.append(f"{document['cpu_s_per_million_rows']:.2f} CPU-s per million rows{where}")
    if document["conformity_pct"] is not None:
        parts.append(f"input range conformity {document['conformity_pct']:.2f}%")
    return ", ".join(parts)


def summary_json(document: dict[str, Any]) -> str:
    """The summary file's text."""
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
