"""Every path a command writes: checked against what it reads, locked, staged, moved into place.

Nothing a user owns is destroyed or changed by a normcore command:

* **Reads and writes never overlap.** Each path a command writes (artifact, output
  directory, report) is resolved (symlinks, ``..``, bind mounts and hard links through
  the file system's own identities) and compared with every path it reads (input and each
  input file, config, artifact, ``--source``) and with the other paths it writes: equal,
  inside or containing is refused, naming both (:func:`check_disjoint`).
* **Only normcore's own outputs are replaced.** An existing output directory is replaced
  only with ``--overwrite`` and only when it is empty or holds normcore's marker
  (:data:`MARKER`, written into every output and report directory); an existing file only
  when it is a file of the same kind (an artifact, a report) written by normcore.
* **Staged beside the target, moved only onto what was checked.** Each target is locked
  (``fcntl.flock`` on ``.NAME.normcore-lock`` beside it: a concurrent run on the same
  target exits 2 at once), written to ``.NAME.normcore-staging-PID-TOKEN`` beside it and,
  when the command succeeds, moved into place with ``renameat2``: ``RENAME_NOREPLACE`` onto
  a target that did not exist (one that appeared meanwhile is kept and the command exits
  2), ``RENAME_EXCHANGE`` onto the target that was checked at the start (same file system
  identity), whose old content is then deleted. Staging left by a process that died
  (``kill -9``) is removed by the next run on that target.
* **Checked before any data is read.** Locks and staging are created when the command
  starts, so a directory that cannot be written is reported (exit 2) before the fit.
  Files and directories are created with the process's umask (as ``open`` / ``mkdir``
  do). Any ``OSError`` while writing is reported as :class:`~normcore.errors.OutputError`
  naming the path, and everything staged is removed.

Where ``renameat2`` is missing (not Linux, or a file system without it), the moves fall
back to ``os.link`` (files) and a check followed by ``os.rename`` (directories), which
leaves a window of a few microseconds for a directory appearing at the target.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from normcore.errors import ConfigError, OutputError

#: Marker file of every directory normcore writes (a leading ``_`` keeps it out of
#: ``pyarrow.dataset`` and Spark reads).
MARKER = "_normcore.json"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Kind = Literal["dir", "file"]


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL of a remote file system (``s3://``, ``gs://``, ``hdfs://``, ...);
    a ``file://`` URL is a local path (:func:`local_path`)."""
    return bool(_URL.match(path)) and not path.startswith("file:")


def local_path(path: str) -> str:
    """``path`` as a local file system path: a ``file://`` URL (no host, or ``localhost``) is
    decoded (``file:///data/a%20b`` -> ``/data/a b``); any other path is returned as it is.

    Raises
    ------
    ConfigError
        A ``file://`` URL naming another host.
    """
    if not path.startswith("file:"):
        return path
    parsed = urllib.parse.urlparse(path)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(f"'{path}' names host '{parsed.netloc}'; a file:// URL names this machine's files")
    return urllib.parse.unquote(parsed.path)


@dataclass(frozen=True)
class Place:
    """A path a command reads or writes, named by its ``role`` (``--output``, ``input``, ...)."""

    role: str
    path: str

    @property
    def resolved(self) -> Path:
        """The absolute path with symlinks and ``..`` resolved (as far as it exists)."""
        return Path(os.path.realpath(os.path.expanduser(local_path(self.path))))

    def identities(self) -> list[tuple[str, tuple[int, int] | Path]]:
        """``self`` and each of its ancestors, as a file system identity (device, inode)
        where it exists, else as its resolved path; the first entry is ``self``."""
        found = []
        for location in (self.resolved, *self.resolved.parents):
            try:
                status = os.stat(location)
                found.append((str(location), (status.st_dev, status.st_ino)))
            except OSError:
                found.append((str(location), location))
        return found


def _relation(written: Place, other: Place) -> str | None:
    mine, theirs = written.identities(), other.identities()
    if mine[0][1] == theirs[0][1]:
        return "is"
    if any(identity == theirs[0][1] for _, identity in mine[1:]):
        return "is inside"
    if any(identity == mine[0][1] for _, identity in theirs[1:]):
        return "contains"
    return None


def check_disjoint(reads: Sequence[Place], writes: Sequence[Place]) -> None:
    """Refuse a written path that is, is inside or contains a read path or another written one.

    Raises
    ------
    ConfigError
        Naming both paths and their roles.
    """
    for index, written in enumerate(writes):
        for other in [*reads, *writes[index + 1 :]]:
            relation = _relation(written, other)
            if relation is not None:
                raise ConfigError(
                    f"{written.role} '{written.path}' {relation} {other.role} '{other.path}': normcore never "
                    "writes where it reads or writes something else; choose another path"
                )


# ----------------------------------------------------------------------- renames

_LIBC = ctypes.CDLL(None, use_errno=True)
_RENAMEAT2 = getattr(_LIBC, "renameat2", None)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``; False where the system or file system lacks it."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _move_noreplace(source: Path, target: Path, kind: Kind) -> None:
    if _renameat2(source, target, _RENAME_NOREPLACE):
        return
    if kind == "file":
        os.link(source, target)  # fails with EEXIST: never replaces
        os.unlink(source)
        return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def _exchange(source: Path, target: Path) -> None:
    """Swap ``source`` and ``target`` (both exist); ``source`` then holds the old target."""
    if _renameat2(source, target, _RENAME_EXCHANGE):
        return
    retired = source.with_name(source.name + ".old")
    os.rename(target, retired)
    os.rename(source, target)
    os.rename(retired, source)


def _remove(location: Path) -> None:
    if location.is_dir() and not location.is_symlink():
        shutil.rmtree(location, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _identity(location: Path) -> tuple[int, int] | None:
    try:
        status = os.lstat(location)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def os_error_text(exc: OSError) -> str:
    """What went wrong, as the system says it (``No space left on device``), without the paths
    the message may repeat; Arrow's I/O errors carry the errno in their text."""
    text = str(exc.strerror or exc).strip()
    found = _ERRNO_IN_TEXT.search(text)
    if found:
        return os.strerror(int(found.group(1)))
    if exc.strerror:
        return exc.strerror
    if exc.errno:
        return os.strerror(exc.errno)
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------------- targets


def normcore_dir(location: Path) -> bool:
    """Whether ``location`` is a directory normcore wrote (it holds :data:`MARKER`)."""
    return (location / MARKER).is_file()


def file_starts_with(pattern: bytes) -> Callable[[Path], bool]:
    """A check that a file's first 64 KiB match ``pattern`` (a regular expression)."""
    compiled = re.compile(pattern)

    def check(location: Path) -> bool:
        with open(location, "rb") as stream:
            return compiled.search(stream.read(65536)) is not None

    return check


@dataclass
class Target:
    """One path a command writes.

    Parameters
    ----------
    role : str
        How the user named it (``--output``, ``--artifact``, ``--report``), for messages.
    path : str
        Where it goes.
    kind : {"dir", "file"}
    overwrite : bool
        An existing target may be replaced (it must also pass ``ours``).
    ours : callable
        Whether an existing non-empty target was written by normcore (and so may be
        replaced): :func:`normcore_dir` for directories.
    what : str
        What the target is, for messages ("output directory", "artifact").
    command : str
        Recorded in the directory marker.
    """

    role: str
    path: str
    kind: Kind
    overwrite: bool = False
    ours: Callable[[Path], bool] = normcore_dir
    what: str = "output"
    command: str = "normcore"
    staging: Path = field(init=False)
    _target: Path = field(init=False)
    _checked: tuple[int, int] | None = field(init=False, default=None)
    _lock: int | None = field(init=False, default=None)
    _created: list[Path] = field(init=False, default_factory=list)

    @property
    def place(self) -> Place:
        return Place(self.role, self.path)

    @property
    def final(self) -> Path:
        """The target path (absolute)."""
        return self._target

    def prepare(self) -> None:
        """Check the target, lock it, clear stale staging and create this run's staging.

        Raises
        ------
        ConfigError
            A URL, an existing target of the other kind, one that needs ``--overwrite``
            or was not written by normcore, or one another run holds.
        OutputError
            The location cannot be written.
        """
        if is_url(self.path):
            raise ConfigError(
                f"option {self.role}: '{self.path}' is a URL; this command writes local paths "
                "(python -m pipelines.beam.normalize writes to Beam file systems)"
            )
        self._target = Path(os.path.abspath(os.path.expanduser(local_path(self.path))))
        if self._target.name in ("", ".", ".."):
            raise ConfigError(f"option {self.role}: '{self.path}' does not name a file or directory")
        with self._aborted_on_error():
            self._make_parents()
            self._acquire_lock()
            self._check_existing()
            self._clear_stale()
            self._stage()

    @contextlib.contextmanager
    def _aborted_on_error(self) -> Iterator[None]:
        """Abort on any error in the block; an ``OSError`` becomes an :class:`OutputError`."""
        try:
            yield
        except OSError as exc:
            self.abort()
            raise OutputError(f"{self.role}: cannot write '{self.path}': {os_error_text(exc)}") from None
        except BaseException:
            self.abort()
            raise

    def _make_parents(self) -> None:
        missing = []
        for parent in self._target.parents:
            if parent.exists():
                break
            missing.append(parent)
        for parent in reversed(missing):
            parent.mkdir()
            self._created.append(parent)
        if not self._target.parent.is_dir():
            raise ConfigError(f"option {self.role}: '{self._target.parent}' is not a directory")

    def _sibling(self, suffix: str) -> Path:
        return self._target.with_name(f".{self._target.name}.normcore-{suffix}")

    def _acquire_lock(self) -> None:
        lock_path = self._sibling("lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise ConfigError(
                f"option {self.role}: another normcore command is writing '{self.path}' (it holds {lock_path.name}); "
                "nothing was written"
            ) from None
        status = os.fstat(descriptor)
        if _identity(lock_path) != (status.st_dev, status.st_ino):
            os.close(descriptor)  # the winner removed this lock file as we opened it
            raise ConfigError(f"option {self.role}: another normcore command was writing '{self.path}'")
        self._lock = descriptor

    def _check_existing(self) -> None:
        target = self._target
        if not os.path.lexists(target):
            return
        if target.is_symlink():
            raise ConfigError(f"option {self.role}: '{self.path}' is a symbolic link; normcore does not follow it")
        is_dir = target.is_dir()
        if self.kind == "dir" and not is_dir:
            raise ConfigError(f"option {self.role}: '{self.path}' exists and is not a directory")
        if self.kind == "file" and is_dir:
            raise ConfigError(f"option {self.role}: '{self.path}' is a directory; expected a file path")
        empty = is_dir and not any(target.iterdir())
        if not empty and not self.ours(target):
            raise ConfigError(
                f"option {self.role}: '{self.path}' exists and was not written by normcore; "
                f"it is left as it is: choose another path"
            )
        if not empty and not self.overwrite:
            raise ConfigError(
                f"option {self.role}: {self.what} '{self.path}' already exists; pass --overwrite to replace it"
            )
        self._checked = _identity(target)

    def _clear_stale(self) -> None:
        prefix = f".{self._target.name}.normcore-staging-"
        for entry in self._target.parent.iterdir():
            if entry.name.startswith(prefix):
                pid = entry.name[len(prefix) :].split("-", 1)[0]
                if pid.isdigit() and not _alive(int(pid)):
                    _remove(entry)

    def _stage(self) -> None:
        self.staging = self._sibling(f"staging-{os.getpid()}-{secrets.token_hex(4)}")
        if self.kind == "dir":
            os.mkdir(self.staging, 0o777)
        else:
            os.close(os.open(self.staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))

    def verify(self) -> None:
        """Fail unless the target is still what :meth:`prepare` checked (absent, or the same).

        Raises
        ------
        ConfigError
            Something appeared at (or replaced) the target meanwhile; it is kept.
        """
        now = _identity(self._target)
        if now != self._checked:
            state = "appeared at" if self._checked is None else "replaced"
            raise ConfigError(
                f"option {self.role}: something {state} '{self.path}' while normcore was running; "
                "it is kept and nothing was written"
            )

    def commit(self) -> None:
        """Move the staging into place (see the module notes) and release the lock."""
        with self._aborted_on_error():
            if self.kind == "dir":
                marker = {"format": "normcore.output", "command": self.command,
                          "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip
                (self.staging / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
            self._sync(self.staging)
            self.verify()
            try:
                if self._checked is None:
                    _move_noreplace(self.staging, self._target, self.kind)
                else:
                    _exchange(self.staging, self._target)
                    _remove(self.staging)
            except FileExistsError:
                raise ConfigError(
                    f"option {self.role}: something appeared at '{self.path}' while normcore was running; "
                    "it is kept and nothing was written"
                ) from None
            self._sync_dir(self._target.parent)
        self._created.clear()
        self._release()

    def _sync(self, location: Path) -> None:
        if self.kind == "file":
            descriptor = os.open(location, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    @staticmethod
    def _sync_dir(location: Path) -> None:
        descriptor = os.open(location, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        except OSError:
            pass  # some file systems cannot sync a directory
        finally:
            os.close(descriptor)

    def abort(self) -> None:
        """Remove this run's staging and the directories it created; release the lock."""
        staging = getattr(self, "staging", None)
        if staging is not None:
            _remove(staging)
        for parent in reversed(self._created):
            with contextlib.suppress(OSError):
                parent.rmdir()
        self._created.clear()
        self._release()

    def _release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._sibling("lock"))
        os.close(self._lock)
        self._lock = None


class Writes:
    """The targets of one command: checked and prepared on entry, committed on success.

    Parameters
    ----------
    reads : sequence of Place
        Every path the command reads.
    targets : sequence of Target
        Every path it writes, in the order they are committed (the artifact last, so
        that it is written only once the output is complete).
    also_written : sequence of Place
        Paths written elsewhere (remote URLs an engine writes in place): checked
        against the targets, not staged.

    Notes
    -----
    Use as a context manager: on entry the paths are checked (:func:`check_disjoint`)
    and each target prepared; on a normal exit the targets not yet committed are
    verified (all of them first) and committed; on an exception every uncommitted
    target is aborted and nothing is left.
    """

    def __init__(self, reads: Sequence[Place], targets: Sequence[Target], also_written: Sequence[Place] = ()) -> None:
        self.reads = list(reads)
        self.targets = list(targets)
        self.also_written = list(also_written)
        self._pending: list[Target] = []

    def __enter__(self) -> Writes:
        check_disjoint([*self.reads, *self.also_written], [t.place for t in self.targets])
        for target in self.targets:
            target.prepare()
            self._pending.append(target)
        return self

    def commit(self, *targets: Target) -> None:
        """Commit ``targets`` now (all pending ones when none is given), verifying them all first."""
        chosen = [t for t in self._pending if not targets or t in targets]
        for target in chosen:
            target.verify()
        for target in chosen:
            self._pending.remove(target)
            target.commit()

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if kind is None:
            try:
                self.commit()
                return
            except BaseException:
                self._abort()
                raise
        self._abort()

    def _abort(self) -> None:
        for target in self._pending:
            target.abort()
        self._pending.clear()


@contextlib.contextmanager
def writing(what: str, path: str | os.PathLike[str]) -> Iterator[None]:
    """Report an ``OSError`` raised in the block as :class:`OutputError` naming ``what`` and ``path``."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {what} '{path}': {os_error_text(exc)}") from None


def read_json(location: Path) -> Any:
    """The JSON document of a file.

    Raises
    ------
    ValueError
        The file cannot be read, is not UTF-8 JSON, or nests too deeply (the message says which).
    """
    try:
        return json.loads(location.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
