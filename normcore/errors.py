"""Exception types shared by every normcore entry point.

Every error a user can cause derives from :class:`NormcoreError`; the CLI turns
it into a one-line ``error: ...`` message and exit code 2. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import re


class NormcoreError(Exception):
    """Bad input, configuration or usage; the message names what was wrong.

    ``detail`` optionally holds more (an engine's stack trace), shown with ``--verbose``.
    """

    def __init__(self, message: str = "", detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class ConfigError(NormcoreError):
    """An option or configuration key is invalid (raised before any data is read)."""


class InputError(NormcoreError):
    """An input file or column cannot be used (missing, empty, wrong type)."""


class ArtifactError(NormcoreError):
    """An artifact cannot be loaded or does not fit the data it is applied to."""


class OutputError(NormcoreError):
    """An output cannot be written (permissions, a full disk, a busy mount); the message
    names the path. Nothing is left behind."""


class EngineError(NormcoreError):
    """An engine's job failed for a reason normcore cannot name more precisely (a worker
    crash, a lost executor); the message gives the engine's short cause."""


class CheckFailed(Exception):
    """A data-quality or drift check ran and found the data not conforming (exit 1)."""


#: ``normcore.errors.InputError: message`` as a worker's traceback prints it.
_REMOTE_ERROR = re.compile(r"normcore\.errors\.(\w+): (.+)")


def error_from_traceback(text: str) -> NormcoreError | None:
    """The last normcore error named in a remote worker's traceback ``text``, rebuilt.

    Beam runners and Spark report a failed worker as the text of its traceback; this
    turns ``normcore.errors.InputError: column 'x' ...`` back into that exception so
    the CLI prints one ``error:`` line and exits 2. Returns None if there is none.
    """
    found = _REMOTE_ERROR.findall(text)
    if not found:
        return None
    name, message = found[-1]
    error_type = globals().get(name)
    if not (isinstance(error_type, type) and issubclass(error_type, NormcoreError)):
        return None
    return error_type(message.strip())
