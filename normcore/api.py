"""The Python API for training code: fit in-process, load an artifact, normalize data.

>>> import normcore
>>> art = normcore.fit(df, features=["price", "rate:minmax"])          # doctest: +SKIP
>>> norm = normcore.Normalizer.from_artifact(art)                       # doctest: +SKIP
>>> y = norm.transform(df); x = norm.inverse_transform(y)               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from normcore.artifact import Artifact, load_artifact
from normcore.block import BlockNormalizer
from normcore.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from normcore.apply import BatchNormalizer

FeatureSelection = str | Sequence[str | Mapping[str, Any]] | None


def feature_configs(features: FeatureSelection) -> list[dict[str, Any]] | None:
    """A feature selection (``"a,b:minmax"``, names, ``name:method`` strings or mappings) as
    the config's ``features`` list; None selects every numeric column."""
    if features is None:
        return None
    from normcore.plan import parse_feature_spec

    if isinstance(features, str):
        return [f.model_dump() for f in parse_feature_spec(features)]
    configs = []
    for item in features:
        if isinstance(item, Mapping):
            configs.append(dict(item))
        else:
            configs.extend(f.model_dump() for f in parse_feature_spec(str(item)))
    return configs


def _numpy_names(array: np.ndarray, features: FeatureSelection) -> list[str]:
    width = 1 if array.ndim == 1 else array.shape[1]
    configs = feature_configs(features)
    if configs is None:
        return [f"x{i}" for i in range(width)]
    if len(configs) != width:
        raise InputError(f"array has {width} column(s) but {len(configs)} feature name(s) were given")
    return [c["name"] for c in configs]


def to_arrow_table(data: Any, names: Sequence[str] | None = None) -> pa.Table:
    """Convert a pyarrow Table / RecordBatch, pandas DataFrame, dict of arrays or NumPy array."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, np.ndarray):
        columns = data.reshape(-1, 1) if data.ndim == 1 else data
        if columns.ndim != 2:
            raise InputError(f"expected a 1-D or 2-D array, got shape {data.shape}")
        labels = list(names) if names is not None else [f"x{i}" for i in range(columns.shape[1])]
        return pa.table({label: columns[:, i] for i, label in enumerate(labels)})
    if isinstance(data, Mapping):
        return pa.table(dict(data))
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InputError(f"cannot fit data of type {type(data).__name__}; pass a DataFrame, Arrow table or array")


def fit(
    data: Any,
    features: FeatureSelection = None,
    method: str = "zscore",
    *,
    ddof: int = 0,
    key: str | None = None,
    sketch: bool = False,
) -> Artifact:
    """Fit normalization statistics on in-memory data (local engine).

    Parameters
    ----------
    data : pandas.DataFrame, pyarrow.Table, pyarrow.RecordBatch, dict or ndarray
        Columns to fit. A 2-D array of shape ``(n_samples, n_features)`` takes its
        column names from ``features`` (default ``x0, x1, ...``).
    features : str or sequence, optional
        ``"a,b:minmax"``, or a list of names / ``"name:method"`` strings / dicts
        ``{"name", "method", "params"}``. Default: every integer and float column.
    method : str, default "zscore"
        Method of the features that name none.
    ddof : {0, 1}, default 0
        Variance convention of ``zscore``.
    key : str, optional
        Fit statistics per value of this column too.
    sketch : bool, default False
        Keep a quantile sketch for every feature.

    Returns
    -------
    Artifact

    Notes
    -----
    NaN, +-inf and nulls are left out of the statistics and counted. A column with
    zero spread gets scale 1 and a :class:`~normcore.fitting.ConstantFeatureWarning`.
    """
    from normcore.config import build_job  # fitting's modules: not loaded by a serving Normalizer
    from normcore.engines.local import fit_batches
    from normcore.plan import resolve_plan

    names = _numpy_names(data, features) if isinstance(data, np.ndarray) else None
    table = to_arrow_table(data, names)
    job = build_job(
        {"method": method, "ddof": ddof, "key": key, "sketch": sketch, "features": feature_configs(features)},
        "normcore.fit",
    )
    plan = resolve_plan(job, table.schema, "<data>")
    return fit_batches(plan, table.to_batches, None)


class Normalizer:
    """Applies a fitted artifact to NumPy, pyarrow or pandas data; same kind out.

    Parameters
    ----------
    artifact : Artifact
    features : sequence of str, optional
        Features to transform (default: all of the artifact's). For NumPy input
        these are the columns of the array, in order.
    key : str, optional
        For a keyed artifact and NumPy input: use this key value's statistics
        (default: the global ones). Tables and DataFrames use their key column.

    Notes
    -----
    Output feature columns are float64. NaN and +-inf pass through unchanged;
    nulls stay null (pyarrow) or become NaN (pandas, NumPy).

    The linear methods' parameters are stacked into vectors at construction: a NumPy
    array, or the feature columns of a DataFrame without a key, is then transformed in
    one vectorized expression (other methods column by column), with the same bits as
    the per-column transforms of a table. pyarrow is loaded on the first Arrow table or
    keyed DataFrame, so a server that normalizes arrays starts without it.
    """

    def __init__(self, artifact: Artifact, features: Sequence[str] | None = None, key: str | None = None) -> None:
        self.artifact = artifact
        self.features = list(features) if features is not None else artifact.feature_names
        self.key = key
        transforms = [artifact.transform(name, key) for name in self.features]  # unknown names raise here
        self._forward_block = BlockNormalizer(transforms)
        self._inverse_block = BlockNormalizer(transforms, inverse=True)

    @classmethod
    def from_artifact(
        cls, artifact: Artifact | str | Path, features: Sequence[str] | None = None, key: str | None = None
    ) -> Normalizer:
        """Build from an :class:`Artifact` or the path of an artifact file."""
        if not isinstance(artifact, Artifact):
            artifact = load_artifact(artifact)
        return cls(artifact, features, key)

    def transform(self, data: Any) -> Any:
        """Normalize ``data``; returns the same kind of object."""
        if type(data) is np.ndarray:  # the latency-bound case first, without the dispatch of _run
            return self._run_numpy(self._forward_block, data)
        return self._run(False, self._forward_block, data)

    def inverse_transform(self, data: Any) -> Any:
        """Undo :meth:`transform`; returns the same kind of object."""
        if type(data) is np.ndarray:  # the latency-bound case first, without the dispatch of _run
            return self._run_numpy(self._inverse_block, data)
        return self._run(True, self._inverse_block, data)

    @cached_property
    def _batch_normalizers(self) -> tuple[BatchNormalizer, BatchNormalizer]:
        """Forward and inverse normalizers of Arrow batches (loading pyarrow, on first use)."""
        from normcore.apply import BatchNormalizer

        return BatchNormalizer(self.artifact, self.features), BatchNormalizer(self.artifact, self.features, True)

    def _run(self, inverse: bool, block_normalizer: BlockNormalizer, data: Any) -> Any:
        if isinstance(data, np.ndarray):
            return self._run_numpy(block_normalizer, data)
        module = type(data).__module__
        if module.startswith("pyarrow"):  # an Arrow object: pyarrow is loaded already
            import pyarrow as pa

            normalizer = self._batch_normalizers[inverse]
            if isinstance(data, pa.RecordBatch):
                return normalizer.transform_batch(data)[0]
            if isinstance(data, pa.Table):
                normalizer.check_schema(data.schema, "<table>")
                batches = [normalizer.transform_batch(b)[0] for b in data.to_batches()]
                return pa.Table.from_batches(batches, schema=normalizer.output_schema(data.schema))
        if module.startswith("pandas"):
            return self._run_pandas(inverse, block_normalizer, data)
        raise InputError(f"cannot normalize data of type {type(data).__name__}")

    def _run_numpy(self, block_normalizer: BlockNormalizer, data: np.ndarray) -> np.ndarray:
        columns = data.reshape(-1, 1) if data.ndim == 1 else data
        if columns.ndim != 2 or columns.shape[1] != block_normalizer.width:
            raise InputError(
                f"expected an array of shape (n_samples, {len(self.features)}) for features "
                f"{', '.join(self.features)}; got {data.shape}"
            )
        out = block_normalizer(np.ascontiguousarray(columns, dtype=np.float64))
        return out.reshape(data.shape) if data.ndim == 1 else out

    def _run_pandas(self, inverse: bool, block_normalizer: BlockNormalizer, frame: Any) -> Any:
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise InputError(f"DataFrame lacks fitted column(s) {', '.join(missing)}")
        if self.artifact.key is None and frame.columns.is_unique:
            return self._run_pandas_block(block_normalizer, frame)
        arrays = {name: frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in self.features}
        key_column = None
        if self.artifact.key is not None:
            if self.artifact.key not in frame.columns:
                raise InputError(f"DataFrame lacks key column '{self.artifact.key}'")
            import pyarrow as pa

            key_column = pa.array(frame[self.artifact.key], from_pandas=True)
        results, _ = self._batch_normalizers[inverse].transform_arrays(arrays, key_column)
        out = frame.copy()
        for name, values in results.items():
            out[name] = values
        return out

    def _run_pandas_block(self, block_normalizer: BlockNormalizer, frame: Any) -> Any:
        # The feature columns as one column-major block (each a contiguous column), transformed
        # at once and set back by position (never in place: the columns become float64).
        block = np.empty((len(frame), len(self.features)), dtype=np.float64, order="F")
        for column, name in enumerate(self.features):
            block[:, column] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        out = frame.copy()
        out.isetitem(frame.columns.get_indexer(self.features).tolist(), block_normalizer(block))
        return out


__all__ = ["Artifact", "ConfigError", "Normalizer", "fit", "load_artifact", "to_arrow_table"]
