"""Exception types shared by every normcore entry point.

Every error a user can cause derives from :class:`NormcoreError`; the CLI turns
it into a one-line ``error: ...`` message and exit code 2. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class NormcoreError(Exception):
    """Bad input, configuration or usage; the message names what was wrong."""


class ConfigError(NormcoreError):
    """An option or configuration key is invalid (raised before any data is read)."""


class InputError(NormcoreError):
    """An input file or column cannot be used (missing, empty, wrong type)."""


class ArtifactError(NormcoreError):
    """An artifact cannot be loaded or does not fit the data it is applied to."""


class CheckFailed(Exception):
    """A data-quality or drift check ran and found the data not conforming (exit 1)."""
