"""``Normalization``: a fitted normcore artifact as a layer of training code.

The layer Keras users know (``axis=-1``: the last axis holds the features; fitted
statistics are buffers; ``inverse()``), for every method of the artifact: each feature is
normalized by its method's own ``forward`` (:mod:`normcore.transforms`), evaluated on
tensors by :class:`~normcore.torch.ops.TorchOps`; nothing is re-implemented here.

* :meth:`Normalization.from_artifact` builds it from an artifact (or its path); a keyed
  artifact takes a ``key`` argument (key values, or the indices of
  :meth:`Normalization.key_index`): rows of an unseen or null key use the global
  parameters, as ``normcore apply`` does.
* :meth:`Normalization.adapt` fits it on an iterable of batches (a ``DataLoader``) with the
  exact, mergeable statistics of :mod:`normcore.stats`, accumulated in float64: the same
  code ``normcore fit`` runs, so both give the same artifact. Keras adapts in float32 (at
  an offset of 1e9 its variance is off by about 1e6) and divides by ``max(std, 1e-7)``;
  here a constant feature gets scale 1.
* Any floating input dtype: the maths runs in float32 (float64 for float64 input) and the
  output has the input's dtype. The fitted operands are float64 buffers (``state_dict``
  round-trips them, and the artifact itself as extra state), moved with the module.
* ``torch.compile(fullgraph=True)`` traces it without graph breaks (pass ``key`` as the
  index tensor of :meth:`key_index` under compile); ``torch.export`` works too.
  ``torch.jit.script`` does not: the formulas are Python functions over an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from normcore.artifact import Artifact, load_artifact, parse_artifact
from normcore.config import build_job
from normcore.engines.local import fit_batches
from normcore.errors import ConfigError, InputError
from normcore.plan import resolve_plan
from normcore.torch.ops import TorchOps
from normcore.transforms import Fitted

#: Buffer names: ``_op{feature index}_{operand name}``.
_PREFIX = "_op"


def _stack(fitted: Sequence[Fitted], name: str) -> torch.Tensor:
    """One operand of a feature over its key rows (row 0 global): a number per row, or an
    array per row padded with +inf (see :mod:`normcore.torch.ops`)."""
    values = [f.operands[name] for f in fitted]
    if not isinstance(values[0], tuple):
        return torch.tensor(values, dtype=torch.float64)
    width = max(len(v) for v in values)
    padded = [list(v) + [float("inf")] * (width - len(v)) for v in values]
    return torch.tensor(padded, dtype=torch.float64)


class Normalization(nn.Module):
    """A normcore artifact's transforms as a layer; the features are along ``axis``.

    Parameters
    ----------
    axis : int, default -1
        The axis of ``x`` that holds the features, in the order of ``features``.

    Notes
    -----
    Build it with :meth:`from_artifact`, or create it empty and :meth:`adapt` it. NaN and
    +-inf pass through unchanged, as ``normcore apply`` passes them; a finite input gives
    a finite output.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis
        self.artifact: Artifact | None = None
        self.features: list[str] = []
        self._fitted: list[Fitted] = []
        self._keys: dict[str, int] = {}

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_artifact(
        cls, artifact: Artifact | str | Path, features: Sequence[str] | None = None, axis: int = -1
    ) -> Normalization:
        """The layer of ``artifact`` (an :class:`~normcore.Artifact` or a path), for
        ``features`` (default: every feature of the artifact, in its order)."""
        layer = cls(axis)
        layer._build(artifact if isinstance(artifact, Artifact) else load_artifact(artifact), features)
        return layer

    def adapt(
        self,
        batches: Iterable[Any],
        features: Sequence[str | Mapping[str, Any]] | None = None,
        method: str = "zscore",
        *,
        ddof: int = 0,
        key: str | None = None,
        sketch: bool = False,
    ) -> Normalization:
        """Fit the layer on ``batches`` as ``normcore fit`` fits files (exact float64 statistics).

        Parameters
        ----------
        batches : iterable
            Each a tensor or array of shape ``(rows, n_features)`` (features along the last
            axis), or a mapping of column name to a 1-D tensor / array (a key column too).
            A method that searches in passes (``power``) iterates ``batches`` once per pass:
            give a ``DataLoader`` or a list, not a generator.
        features : sequence, optional
            Names (``"x0, x1, ..."`` by default for tensors), ``"name:method"`` strings or
            ``{"name", "method", "params"}`` mappings, as ``normcore.fit`` takes them.
        method, ddof, key, sketch
            As ``normcore fit`` (``--method``, ``--ddof``, ``--key``, ``--sketch``).

        Returns
        -------
        Normalization
            ``self``, with its buffers set.
        """
        from normcore.api import feature_configs

        configs = feature_configs(features)
        names = [c["name"] for c in configs] if configs is not None else None
        seen = iter(batches)
        first = next(seen, None)
        if first is None:
            raise InputError("adapt: the batches hold no rows")
        first_batch = _record_batch(first, names)
        job = build_job({"method": method, "ddof": ddof, "key": key, "sketch": sketch, "features": configs}, "adapt")
        plan = resolve_plan(job, first_batch.schema, "<batches>")
        passes = [0]

        def each_pass() -> Iterable[pa.RecordBatch]:
            if passes[0] == 0:
                yield first_batch
                yield from (_record_batch(b, names) for b in seen)
            else:
                again = iter(batches)
                if again is seen:
                    raise ConfigError("adapt: a method searches in passes; give re-iterable batches (a DataLoader)")
                yield from (_record_batch(b, names) for b in again)
            passes[0] += 1

        self._build(fit_batches(plan, each_pass, None), None)
        return self

    def _build(self, artifact: Artifact, features: Sequence[str] | None) -> None:
        names = list(features) if features is not None else artifact.feature_names
        for name in names:
            artifact.feature(name)  # an unknown feature: ArtifactError naming it
        keys = artifact.key_values
        self.artifact, self.features = artifact, names
        self._keys = {value: row for row, value in enumerate(keys, start=1)}
        self._fitted = [artifact.transform(name) for name in names]
        for buffer in [n for n in self._buffers if n.startswith(_PREFIX)]:
            del self._buffers[buffer]
        for index, name in enumerate(names):
            rows = [artifact.transform(name, None), *(artifact.transform(name, k) for k in keys)]
            for operand in rows[0].operands:
                stacked = _stack(rows, operand)
                self.register_buffer(f"{_PREFIX}{index}_{operand}", stacked if keys else stacked[0])

    # -- apply ---------------------------------------------------------------------------------

    def key_index(self, keys: Sequence[Any] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Row indices of ``keys`` (key values named as :mod:`normcore.keys` names them);
        0, the global parameters, for an unseen or null key."""
        if isinstance(keys, torch.Tensor) and not keys.dtype.is_floating_point and keys.dtype != torch.bool:
            keys = keys.tolist()
        strings = pa.array(np.asarray(keys, dtype=object).ravel().tolist())
        from normcore.keys import key_strings

        named = key_strings(strings).to_pylist()
        return torch.tensor([self._keys.get(v, 0) if v is not None else 0 for v in named], dtype=torch.long)

    def forward(self, x: torch.Tensor, key: Any = None) -> torch.Tensor:
        """Normalize ``x`` (features along ``axis``); ``key``: the rows' key values or indices."""
        return self._transform(x, key, inverse=False)

    def inverse(self, y: torch.Tensor, key: Any = None) -> torch.Tensor:
        """Undo :meth:`forward`."""
        return self._transform(y, key, inverse=True)

    def _transform(self, x: torch.Tensor, key: Any, inverse: bool) -> torch.Tensor:
        if not self._fitted:
            raise RuntimeError("Normalization: build it with from_artifact() or adapt() first")
        if not x.dtype.is_floating_point:
            raise TypeError(f"Normalization: expected a floating tensor, got {x.dtype}")
        moved = x.movedim(self.axis, -1)
        if moved.shape[-1] != len(self._fitted):
            raise ValueError(
                f"Normalization: axis {self.axis} has {moved.shape[-1]} features, expected {len(self._fitted)} "
                f"({', '.join(self.features)})"
            )
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        ops = TorchOps(compute, x.device)
        rows = self._rows(key, moved) if self._keys else None
        buffers = dict(self.named_buffers(recurse=False))
        columns = []
        for index, fitted in enumerate(self._fitted):
            operands = {}
            for operand in fitted.operands:
                value = buffers[f"{_PREFIX}{index}_{operand}"].to(compute)
                operands[operand] = value[rows] if rows is not None else value
            column = moved[..., index].to(compute)
            apply = fitted.method.inverse if inverse else fitted.method.forward
            columns.append(apply(column, operands, fitted.params, ops))
        return torch.stack(columns, dim=-1).movedim(-1, self.axis).to(x.dtype)

    def _rows(self, key: Any, x: torch.Tensor) -> torch.Tensor:
        if key is None:
            raise ValueError(f"Normalization: the artifact was fitted per '{self.artifact.key}'; pass key=")
        rows = key if isinstance(key, torch.Tensor) and key.dtype == torch.long else self.key_index(key)
        return rows.to(x.device).reshape(x.shape[:-1])

    # -- state ---------------------------------------------------------------------------------

    def get_extra_state(self) -> dict[str, Any]:
        return {"artifact": None if self.artifact is None else self.artifact.to_json(), "features": self.features}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("artifact") is not None:
            import json

            self._build(parse_artifact(json.loads(state["artifact"]), "state_dict"), state["features"])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        # Rebuild from the artifact first, so a fresh layer has the buffers the state holds.
        extra = state_dict.get(prefix + "_extra_state")
        if extra is not None:
            self.set_extra_state(extra)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def extra_repr(self) -> str:
        methods = ", ".join(f"{n}:{f.method.name}" for n, f in zip(self.features, self._fitted, strict=True))
        return f"axis={self.axis}, features=[{methods}]" + (f", key={self.artifact.key!r}" if self._keys else "")


def _record_batch(batch: Any, names: Sequence[str] | None) -> pa.RecordBatch:
    """A batch of ``adapt`` as Arrow (float64 features; the key column as it is)."""
    if isinstance(batch, Mapping):
        return pa.RecordBatch.from_pydict({k: _values(v) for k, v in batch.items()})
    values = _values(batch)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        raise InputError(f"adapt: expected batches of shape (rows, features), got {values.shape}")
    labels = list(names) if names is not None else [f"x{i}" for i in range(values.shape[1])]
    if len(labels) != values.shape[1]:
        raise InputError(f"adapt: batches have {values.shape[1]} features but {len(labels)} names were given")
    return pa.RecordBatch.from_arrays([pa.array(values[:, i]) for i in range(values.shape[1])], names=labels)


def _values(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        return tensor.to(torch.float64).numpy() if tensor.dtype.is_floating_point else tensor.numpy()
    return np.asarray(values)
