"""Report directories of ``validate`` and ``drift``: checked first, written atomically.

A report directory is replaced as a whole when a command succeeds in writing it (a
temporary sibling renamed into place), so a failed command leaves the previous
report, or nothing, behind. An existing directory is replaced only when it is
empty or holds a report of the same command (its marker file), never a directory
of other files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from normcore.errors import ConfigError
from normcore.io import atomic_output_dir


def check_report_dir(path: str | Path, marker: str, option: str = "--report") -> None:
    """Fail unless ``path`` can be (re)written as a report directory.

    Raises
    ------
    ConfigError
        ``path`` is a file, or a non-empty directory without ``marker``.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"option {option}: '{path}' exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not (target / marker).is_file():
        raise ConfigError(
            f"option {option}: directory '{path}' is not empty and holds no previous report ({marker}); "
            "choose a new or empty directory"
        )


@contextlib.contextmanager
def report_dir(path: str | Path, marker: str, option: str = "--report") -> Iterator[Path]:
    """Yield a staging directory that replaces the report directory ``path`` on success."""
    check_report_dir(path, marker, option)
    with atomic_output_dir(path, overwrite=True) as staging:
        yield staging
