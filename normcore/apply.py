"""Apply an artifact to Arrow record batches (the local engine, Beam and the Python API).

Feature columns are replaced in place by float64 columns under the same name;
every other column passes through untouched, so a batch keeps its rows, their
order and its pass-through columns. Nulls stay null; NaN and +-inf stay as they are.
(:mod:`normcore.block` applies the same transforms to a 2-D float64 array, without Arrow.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from normcore.arrays import column_as_float64, float64_column
from normcore.artifact import Artifact
from normcore.errors import ArtifactError
from normcore.io import float64_features
from normcore.keys import key_groups

#: Distinct unseen key values remembered for the run summary.
_UNSEEN_SAMPLE = 20


@dataclass
class ApplyCounts:
    """What an apply saw: rows, and rows whose key had no statistics of its own.

    ``unseen_key_rows`` counts rows whose key value was not seen at fit time (they
    use the global statistics); ``null_key_rows`` rows whose key is null (likewise).
    """

    rows: int = 0
    unseen_key_rows: int = 0
    null_key_rows: int = 0
    unseen_keys: set[str] = field(default_factory=set)

    def merge(self, other: ApplyCounts) -> ApplyCounts:
        """Add ``other`` into this object and return it."""
        self.rows += other.rows
        self.unseen_key_rows += other.unseen_key_rows
        self.null_key_rows += other.null_key_rows
        room = _UNSEEN_SAMPLE - len(self.unseen_keys)
        if room > 0:
            self.unseen_keys.update(sorted(other.unseen_keys)[:room])
        return self

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary."""
        return {
            "rows": self.rows,
            "unseen_key_rows": self.unseen_key_rows,
            "null_key_rows": self.null_key_rows,
            "unseen_keys_sample": sorted(self.unseen_keys),
        }


class BatchNormalizer:
    """Applies (or inverts) an artifact's transforms to record batches.

    Parameters
    ----------
    artifact : Artifact
    features : sequence of str, optional
        Features to transform; default every feature of the artifact.
    inverse : bool, default False
        Apply the inverse transforms.

    Notes
    -----
    With a keyed artifact, each row uses its key's parameters; rows with an unseen
    or null key use the global ones and are counted in :class:`ApplyCounts`.
    """

    def __init__(self, artifact: Artifact, features: Sequence[str] | None = None, inverse: bool = False) -> None:
        self.artifact = artifact
        self.features = list(features) if features is not None else artifact.feature_names
        for name in self.features:
            artifact.transform(name)  # raises ArtifactError for an unknown feature
        self.inverse = inverse

    def check_schema(self, schema: pa.Schema, source: str) -> None:
        """Fail early when ``schema`` lacks a fitted column or the key column, or a fitted
        column is not an integer or float column (a bool, a string of digits); a column of
        nulls only (type null, as an empty CSV reads) is accepted.

        Raises
        ------
        ArtifactError
            Naming the column and the input.
        """
        missing = [name for name in self.features if schema.get_field_index(name) < 0]
        if missing:
            raise ArtifactError(
                f"input '{source}' lacks fitted column(s) {', '.join(missing)}; it has: {', '.join(schema.names)}"
            )
        for name in self.features:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
                raise ArtifactError(
                    f"column '{name}' of '{source}' has type {kind}; the artifact normalizes integer and float "
                    f"columns only (it was fitted on {self.artifact.feature(name).get('dtype', 'a number')})"
                )
        if self.artifact.key is not None and schema.get_field_index(self.artifact.key) < 0:
            raise ArtifactError(f"input '{source}' lacks key column '{self.artifact.key}' the artifact was fitted with")

    def output_schema(self, schema: pa.Schema, null_free: Collection[str] = ()) -> pa.Schema:
        """``schema`` with every transformed feature as float64 (same position, name and
        nullability; features in ``null_free`` declared not null: :func:`float64_features`)."""
        return float64_features(schema, self.features, null_free)

    def transform_values(self, name: str, values: np.ndarray, key: str | None = None) -> np.ndarray:
        """Transform (or invert) float64 ``values`` of feature ``name``."""
        transform = self.artifact.transform(name, key)
        return transform.inverse(values) if self.inverse else transform.forward(values)

    def transform_arrays(
        self, arrays: Mapping[str, np.ndarray], key_column: pa.Array | pa.ChunkedArray | None = None
    ) -> tuple[dict[str, np.ndarray], ApplyCounts]:
        """Transform float64 arrays (NaN at nulls) of the features, all of one length.

        ``key_column`` is required for a keyed artifact: the key of each row.
        """
        rows = len(next(iter(arrays.values()))) if arrays else 0
        counts = ApplyCounts(rows=rows)
        groups = self._groups(key_column, counts)
        results = {}
        for name, values in arrays.items():
            if groups is None:
                results[name] = self.transform_values(name, values)
                continue
            result = np.empty_like(values)
            for key_value, group_rows in groups:
                result[group_rows] = self.transform_values(name, values[group_rows], key_value)
            results[name] = result
        return results, counts

    def transform_batch(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, ApplyCounts]:
        """Transform one batch; returns the new batch and what was counted."""
        key = self.artifact.key
        key_column = None
        if key is not None:
            if batch.schema.get_field_index(key) < 0:
                raise ArtifactError(f"batch lacks key column '{key}' the artifact was fitted with")
            key_column = batch.column(key)
        arrays, validity = {}, {}
        for name in self.features:
            arrays[name], validity[name] = column_as_float64(batch.column(name))
        results, counts = self.transform_arrays(arrays, key_column)
        columns = list(batch.columns)
        for name, result in results.items():
            columns[batch.schema.get_field_index(name)] = float64_column(result, validity[name])
        return pa.RecordBatch.from_arrays(columns, schema=self.output_schema(batch.schema)), counts

    def _groups(
        self, key_column: pa.Array | pa.ChunkedArray | None, counts: ApplyCounts
    ) -> list[tuple[str | None, np.ndarray]] | None:
        if self.artifact.key is None:
            return None
        if key_column is None:
            raise ArtifactError(f"the artifact was fitted with key '{self.artifact.key}'; pass that column")
        groups = list(key_groups(key_column))
        for value, rows in groups:
            if value is None:
                counts.null_key_rows += rows.size
            elif not self.artifact.has_key(value):
                counts.unseen_key_rows += rows.size
                if len(counts.unseen_keys) < _UNSEEN_SAMPLE:
                    counts.unseen_keys.add(value)
        return groups
