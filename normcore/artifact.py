"""The fitted artifact: a readable, versioned, checksummed JSON file.

Layout (version 1)::

    {"format": "normcore.artifact", "version": 1, "engine": "local",
     "created_at": "2026-11-22T06:30:00+00:00", "normcore_version": "0.1.0",
     "rows": 1000, "ddof": 0, "key": null,
     "checksum": "sha256:<hex>",
     "features": {
       "<column>": {
         "dtype": "double",
         "stats": {"count", "null_count", "nan_count", "inf_count", "mean",
                   "var" (ddof 0), "std" (ddof 0), "min", "max", "max_abs",
                   "quantiles": {"sketch": "normcore_kll", "k", "n",
                                 "normalized_rank_error", "min", "max",
                                 "compactions", "levels", "data" (base64),
                                 "percentiles": {"1": ..., "50": ..., ...}}  # optional
         },
         "transform": {"method": "zscore", "params": {...}, "kind": "linear",
                       "shift", "scale", "offset", "clip", "constant", ...}}},
     "keys": {"<key value>": {"rows": n, "features": {<as above>}}}   # with --key
    }

``checksum`` is ``"sha256:" + sha256(json.dumps(document without "checksum",
sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))``.

Loading never executes code (plain JSON, no pickle) and checks, in order: JSON
syntax, ``format``, ``version``, ``checksum``, required fields; the error names the
file and the first check that fails.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from normcore.errors import ArtifactError
from normcore.paths import Target, Writes, file_starts_with, local_path, read_json
from normcore.stats import QuantileSketch
from normcore.transforms import Fitted, fitted_from_entry

FORMAT = "normcore.artifact"
VERSION = 1
_STAT_FIELDS = ("count", "null_count", "nan_count", "inf_count", "mean", "var", "std", "min", "max", "max_abs")
_TOP_FIELDS = ("engine", "created_at", "rows", "features")
_COUNT_FIELDS = ("count", "null_count", "nan_count", "inf_count")
#: Deepest nesting of a valid artifact is 6 (keys.K.features.F.stats.quantiles.percentiles).
MAX_DEPTH = 12


def canonical_json(document: Mapping[str, Any]) -> str:
    """The canonical serialization the checksum is taken over (``checksum`` excluded)."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compute_checksum(document: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of :func:`canonical_json`."""
    return "sha256:" + hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


class Artifact:
    """A fitted artifact: per-feature statistics and transform parameters.

    Build one with :func:`normcore.fit`, an engine, :func:`load_artifact` or
    :meth:`from_document`; every constructor validates the structure.
    """

    def __init__(self, document: Mapping[str, Any], source: str = "<artifact>") -> None:
        self._document = copy.deepcopy(dict(document))
        self._document.pop("checksum", None)
        self._source = source
        self._transforms: dict[tuple[str, str | None], Fitted] = {}
        _check_structure(self._document, source)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], source: str = "<artifact>") -> Artifact:
        """Validate and wrap an artifact dict (its checksum, if any, is not checked)."""
        return cls(document, source)

    @property
    def document(self) -> dict[str, Any]:
        """A copy of the artifact as a dict, including its checksum."""
        document = copy.deepcopy(self._document)
        document["checksum"] = self.checksum
        return document

    @cached_property
    def checksum(self) -> str:
        """``sha256:<hex>`` of the canonical JSON."""
        return compute_checksum(self._document)

    @property
    def rows(self) -> int:
        """Rows read at fit time."""
        return int(self._document["rows"])

    @property
    def engine(self) -> str:
        """The engine that fitted the artifact."""
        return str(self._document["engine"])

    @property
    def ddof(self) -> int:
        """The job-level variance convention used for ``zscore``."""
        return int(self._document.get("ddof", 0))

    @property
    def feature_names(self) -> list[str]:
        """Fitted features, in fit order."""
        return list(self._document["features"])

    @property
    def key(self) -> str | None:
        """The key column when fitted with ``--key``, else None."""
        return self._document.get("key")

    @property
    def key_values(self) -> list[str]:
        """Key values seen at fit time (as strings)."""
        return list(self._document.get("keys", {}))

    def feature(self, name: str, key: str | None = None) -> dict[str, Any]:
        """The ``{"dtype", "stats", "transform"}`` entry of ``name`` (a copy).

        With ``key``, the entry fitted for that key value; a key (or a feature within
        a key) unseen at fit time falls back to the global entry.
        """
        return copy.deepcopy(self._entry(name, key))

    def has_key(self, key: str) -> bool:
        """Whether ``key`` had its own statistics at fit time."""
        return key in self._document.get("keys", {})

    def transform(self, name: str, key: str | None = None) -> Fitted:
        """The fitted transform of ``name`` (global, or for ``key`` with fallback)."""
        cache_key = (name, key)
        if cache_key not in self._transforms:
            self._transforms[cache_key] = fitted_from_entry(self._entry(name, key)["transform"])
        return self._transforms[cache_key]

    def _entry(self, name: str, key: str | None) -> dict[str, Any]:
        features = self._document["features"]
        if name not in features:
            raise ArtifactError(f"artifact '{self._source}' has no feature '{name}'; it has: {', '.join(features)}")
        if key is not None:
            keyed = self._document.get("keys", {}).get(key)
            if keyed is not None and name in keyed["features"]:
                return keyed["features"][name]
        return features[name]

    def to_json(self, indent: int | None = 2) -> str:
        """The artifact as JSON text, checksum included."""
        return json.dumps(self.document, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the artifact (staged beside ``path``, then moved into place).

        An existing file at ``path`` is replaced only when it is a normcore artifact.
        """
        target = artifact_target(str(path))
        with Writes([], [target]):
            target.staging.write_text(self.to_json(), encoding="utf-8")

    def __repr__(self) -> str:
        return f"Artifact(features={self.feature_names}, rows={self.rows}, engine={self.engine!r})"


#: Recognises a file that holds a normcore artifact (its first 64 KiB name the format).
is_artifact_file = file_starts_with(rb'"format"\s*:\s*"normcore\.artifact"')


def artifact_target(path: str, role: str = "--artifact") -> Target:
    """The artifact file ``path`` as a write :class:`~normcore.paths.Target`: a file that
    replaces a previous normcore artifact, never any other file."""
    return Target(role, path, "file", overwrite=True, ours=is_artifact_file, what="artifact")


def load_artifact(path: str | Path) -> Artifact:
    """Read and verify an artifact file.

    Raises
    ------
    ArtifactError
        The file is missing, not JSON, of another format or version, its checksum
        does not match, or a required field is missing. The message names the file
        and the first failing check.
    """
    location = Path(local_path(str(path)))
    if not location.is_file():
        raise ArtifactError(f"artifact '{path}' does not exist")
    try:
        document = read_json(location)
    except ValueError as exc:
        raise ArtifactError(f"artifact '{path}' {exc}") from None
    return parse_artifact(document, str(path))


def parse_artifact(document: Any, source: str) -> Artifact:
    """Verify an artifact dict read from ``source`` (format, version, checksum, fields)."""
    if not isinstance(document, dict):
        raise ArtifactError(f"artifact '{source}' is not a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise ArtifactError(f"artifact '{source}' is nested more than {MAX_DEPTH} levels deep; no artifact is")
    if document.get("format") != FORMAT:
        raise ArtifactError(f"artifact '{source}': format is {document.get('format')!r}, expected '{FORMAT}'")
    if document.get("version") != VERSION:
        raise ArtifactError(
            f"artifact '{source}': version {document.get('version')!r} is not supported; "
            f"this normcore reads version {VERSION}"
        )
    recorded = document.get("checksum")
    if not isinstance(recorded, str):
        raise ArtifactError(f"artifact '{source}': checksum is missing")
    try:
        actual = compute_checksum(document)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact '{source}': cannot compute its checksum ({exc})") from None
    if recorded != actual:
        raise ArtifactError(f"artifact '{source}': checksum mismatch (file says {recorded}, content is {actual})")
    return Artifact(document, source)


def _depth(value: Any) -> int:
    """How deeply ``value`` nests containers (iteratively: hostile input cannot exhaust the stack)."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                return deepest
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_structure(document: Mapping[str, Any], source: str) -> None:
    for field in ("format", "version", *_TOP_FIELDS):
        if field not in document:
            raise ArtifactError(f"artifact '{source}': required field '{field}' is missing")
    if not _count(document["rows"]):
        raise ArtifactError(f"artifact '{source}': rows: expected a non-negative integer, got {document['rows']!r}")
    features = document["features"]
    if not isinstance(features, dict) or not features:
        raise ArtifactError(f"artifact '{source}': 'features' must be a non-empty object")
    _check_features(features, source, "features")
    key = document.get("key")
    if key is not None:
        if not isinstance(key, str):
            raise ArtifactError(f"artifact '{source}': key: expected a column name, got {key!r}")
        keys = document.get("keys")
        if not isinstance(keys, dict):
            raise ArtifactError(f"artifact '{source}': required field 'keys' is missing (fitted with key)")
        for value, entry in keys.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("features"), dict) or "rows" not in entry:
                raise ArtifactError(f"artifact '{source}': keys.{value} needs 'rows' and 'features'")
            if not _count(entry["rows"]):
                raise ArtifactError(f"artifact '{source}': keys.{value}.rows: expected a non-negative integer")
            unknown = [name for name in entry["features"] if name not in features]
            if unknown:
                raise ArtifactError(f"artifact '{source}': keys.{value}.features.{unknown[0]} is not a feature")
            _check_features(entry["features"], source, f"keys.{value}.features")


def _check_features(features: Mapping[str, Any], source: str, where: str) -> None:
    for name, entry in features.items():
        path = f"{where}.{name}"
        if not isinstance(entry, dict):
            raise ArtifactError(f"artifact '{source}': {path} must be an object")
        for part in ("stats", "transform"):
            if not isinstance(entry.get(part), dict):
                raise ArtifactError(f"artifact '{source}': required field '{path}.{part}' is missing")
        missing = [field for field in _STAT_FIELDS if field not in entry["stats"]]
        if missing:
            raise ArtifactError(f"artifact '{source}': required field '{path}.stats.{missing[0]}' is missing")
        problem = _stats_problem(entry["stats"])
        if problem:
            raise ArtifactError(f"artifact '{source}': {path}.stats.{problem}")
        try:
            fitted_from_entry(entry["transform"], f"{path}.transform")
        except ArtifactError as exc:
            raise ArtifactError(f"artifact '{source}': {exc}") from None


def _stats_problem(stats: Mapping[str, Any]) -> str | None:
    """The first field of a ``stats`` entry (every field present) that is invalid, with why."""
    for field in _COUNT_FIELDS:
        if not _count(stats[field]):
            return f"{field}: expected a non-negative integer, got {stats[field]!r}"
    for field in ("mean", "var", "std", "min", "max", "max_abs"):
        value = stats[field]
        if value is None and (stats["count"] == 0 or field == "var"):
            continue  # no finite value; or a variance beyond float64 (its std is given)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{field}: expected a finite number, got {value!r}"
    if stats["count"] and not stats["min"] <= stats["max"]:
        return "min: greater than max"
    if "quantiles" in stats:
        try:
            QuantileSketch.from_dict(stats["quantiles"])
        except (ValueError, TypeError, KeyError) as exc:
            return f"quantiles.{exc}"
    return None
