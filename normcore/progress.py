"""A progress bar on an interactive terminal, silence everywhere else."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def row_progress(description: str, total_rows: Callable[[], int | None]) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(rows)``; draws a rich progress bar only when stderr is a TTY.

    ``total_rows`` is called only when the bar is drawn.
    """
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total_rows())
        yield lambda rows: progress.advance(task, rows)
