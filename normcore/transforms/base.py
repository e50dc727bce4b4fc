"""What a normalization method is: one object that knows everything about itself.

A :class:`Method` holds, for one method name:

* its parameter schema (:attr:`Method.Params`, a pydantic model: typos fail at start-up);
* the statistics it needs (:meth:`Method.request`): moments always, a quantile sketch, a
  value map applied before statistics are gathered (``log``), a search over a parameter
  that takes several passes over the data (``power``'s lambda);
* how its parameters are fitted from those statistics (:meth:`Method.fit`) and checked
  when an artifact is loaded (:meth:`Method.load`);
* ``forward`` / ``inverse`` written once against the operations adapter
  (:mod:`normcore.transforms.ops`), so NumPy, Spark ``Column`` expressions and torch
  tensors evaluate the very same formula;
* the range its outputs fall in and the moments they have, which validation checks
  (:meth:`Method.output_range`, :meth:`Method.standardized`), and its text for
  ``normcore inspect`` (:meth:`Method.describe`).

Code outside :mod:`normcore.transforms` asks the method object (``METHODS[name]``); it
never switches on a method's name or type. Fitted parameters travel as plain JSON in the
artifact's ``transform`` entry; :class:`Fitted` is their loaded, checked form.

Parameters of a fitted transform reach ``forward`` / ``inverse`` as *operands*: a flat
mapping of names to numbers or tuples of numbers (:meth:`Method.operands`). An engine that
applies per-key parameters replaces each operand by a per-row value of its own (Spark: a
column looked up by the row's key); nothing else changes.

Methods that share a formula with numbers-only operands (the linear family) also name a
:class:`Stack` (:meth:`Method.stack`): several features are then evaluated over a 2-D
block, one column each, in one expression whose operands are vectors (one entry per
column) broadcast against the rows. The element-wise arithmetic is that of the
per-column ``forward`` / ``inverse``, so both give the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from normcore.errors import ArtifactError
from normcore.stats import ColumnRequest, QuantileSketch
from normcore.transforms.ops import NUMPY_OPS, Ops

if TYPE_CHECKING:
    from normcore.stats.combiner import ColumnStats, KeyedStats  # annotations only: the combiner reads Arrow

#: Largest finite float64: outputs saturate here instead of overflowing to infinity.
FLOAT_MAX = float(np.finfo(np.float64).max)


class MethodParams(BaseModel):
    """Base of every method's parameters: unknown keys are rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


@dataclass(frozen=True)
class FitResult:
    """What :meth:`Method.fit` returns for one column.

    Attributes
    ----------
    values : dict
        The fitted fields written into the artifact's ``transform`` entry (JSON numbers
        and lists of numbers).
    constant : bool
        The column had zero spread; its scale was set to 1 (recorded and warned about).
    details : dict
        Recorded beside the values for readers (``ddof``, ``rank_error``, ...); not
        used to apply the transform.
    stats : dict or None
        The statistics to record, when they are not the column's moments summary (a
        method that fits in another space records the statistics of that space).
    sketch : QuantileSketch or None
        The quantile sketch to record in that space, likewise.
    """

    values: dict[str, Any]
    constant: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    sketch: QuantileSketch | None = None


class FitRefused(ValueError):
    """The statistics of a column cannot give finite parameters (the message says why)."""


class Method:
    """Base of every normalization method (see the module notes).

    Subclasses set :attr:`name`, :attr:`Params` and :attr:`kind` and implement
    :meth:`fit`, :meth:`load`, :meth:`operands`, :meth:`forward` and :meth:`inverse`.
    """

    #: The method's name in configs, ``--features`` and the artifact.
    name: ClassVar[str]
    #: Its parameter model.
    Params: ClassVar[type[MethodParams]]
    #: The ``kind`` recorded in the artifact (the family of its fitted fields).
    kind: ClassVar[str]
    #: Validation compares the output's quantiles with the fitted sketch's (``robust``, ``quantile``).
    checks_quantiles: ClassVar[bool] = False
    #: The space the fitted statistics describe, when it is not the input's (``log``, ``power``):
    #: see :meth:`fit_space`; None for methods whose statistics are of the raw values.
    space: ClassVar[str | None] = None

    def params(self, raw: Mapping[str, Any] | MethodParams | None = None) -> MethodParams:
        """Validate ``raw`` parameters (raises pydantic's ``ValidationError``)."""
        if isinstance(raw, self.Params):
            return raw
        return self.Params.model_validate(dict(raw or {}))

    # -- statistics and fit --------------------------------------------------------------------

    def request(self, name: str, params: MethodParams, sketch: bool) -> ColumnRequest:
        """What to gather for column ``name``: moments, and a sketch when asked or needed."""
        return ColumnRequest(name, sketch or self.needs_quantiles(params), getattr(params, "sketch_k", None))

    def needs_quantiles(self, params: MethodParams) -> bool:
        """Whether the fit needs a quantile sketch."""
        return False

    def next_pass(
        self, name: str, params: MethodParams, stats: ColumnStats, keyed: KeyedStats | None
    ) -> ColumnRequest | None:
        """What another pass over the data must gather for column ``name`` before :meth:`fit`
        (a parameter search), given the statistics so far (over every row, and per key
        value with a key); None when the fit needs no more. Most methods need one pass."""
        return None

    def fit(self, stats: ColumnStats, params: MethodParams, ddof: int) -> FitResult:
        """Fit the parameters from one column's statistics (at least one finite value).

        Raises
        ------
        FitRefused
            No finite parameters exist for these statistics.
        """
        raise NotImplementedError

    def uses_variance(self, params: MethodParams) -> bool:
        """Whether the fit uses the column's variance (an overflowing variance refuses it)."""
        return False

    # -- artifact ------------------------------------------------------------------------------

    def load(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The fitted fields of an artifact ``transform`` entry, checked.

        Raises
        ------
        ArtifactError
            Naming the first field that is missing, mistyped, not finite or out of range.
        """
        raise NotImplementedError

    # -- apply -----------------------------------------------------------------------------------

    def operands(self, values: Mapping[str, Any], params: MethodParams) -> dict[str, Any]:
        """The numbers ``forward`` / ``inverse`` read (floats, or tuples of floats)."""
        raise NotImplementedError

    def forward(self, x: Any, operands: Mapping[str, Any], params: MethodParams, ops: Ops) -> Any:
        """Normalize ``x`` (float64 values of the engine); NaN and +-inf pass through."""
        raise NotImplementedError

    def inverse(self, y: Any, operands: Mapping[str, Any], params: MethodParams, ops: Ops) -> Any:
        """Undo :meth:`forward`; NaN and +-inf pass through."""
        raise NotImplementedError

    def stack(self, operands: Mapping[str, Any], params: MethodParams) -> tuple[Stack, dict[str, Any]] | None:
        """The :class:`Stack` this feature joins and its member operands there, or None when
        the method is applied column by column (the default)."""
        return None

    def fit_space(self, x: Any, operands: Mapping[str, Any], params: MethodParams, ops: Ops) -> Any:
        """``x`` in the space the fitted statistics describe (identity unless a value map is
        applied before statistics): drift and reports compare new data there."""
        return x

    # -- what validation checks, what inspect shows ----------------------------------------------

    def output_range(
        self, operands: Mapping[str, Any], params: MethodParams, stats: Mapping[str, Any]
    ) -> tuple[float, float]:
        """Inclusive bounds of the outputs of the fitted data: the forward map of the fitted
        extremes (every method is monotone non-decreasing)."""
        low, high = self.forward(np.array([stats["min"], stats["max"]]), operands, params, NUMPY_OPS)
        return float(low), float(high)

    def standardized(self, operands: Mapping[str, Any], params: MethodParams) -> tuple[float, float, float] | None:
        """``(shift, scale, offset)`` when the output is ``(v - shift) / scale + offset`` of the
        fit-space values ``v`` and is meant to be standardized (validation then checks the
        output's mean and standard deviation); None otherwise."""
        return None

    def describe(self, values: Mapping[str, Any], params: MethodParams) -> str:
        """One line for ``normcore inspect``."""
        raise NotImplementedError


class Stack:
    """A formula shared by the features of several methods, evaluated for many features at once.

    Each member feature contributes operands (numbers, from :meth:`Method.stack`);
    :meth:`operands` stacks them into float64 vectors, one entry per column of the block,
    and :meth:`forward` / :meth:`inverse` evaluate the formula over a 2-D block of shape
    ``(n_samples, n_members)`` with those vectors broadcast against its rows.
    """

    def operands(self, members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The block's operands: each member operand as a float64 vector, in member order."""
        return {name: np.array([member[name] for member in members], dtype=np.float64) for name in members[0]}

    def forward(self, x: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        """Normalize the block ``x`` (one column per member)."""
        raise NotImplementedError

    def inverse(self, y: Any, operands: Mapping[str, Any], ops: Ops) -> Any:
        """Undo :meth:`forward`."""
        raise NotImplementedError


@dataclass(frozen=True)
class Fitted:
    """A loaded, checked transform of one feature (global, or of one key value).

    Attributes
    ----------
    method : Method
    params : MethodParams
    values : dict
        The fitted fields, as :meth:`Method.load` returned them.
    constant : bool
    """

    method: Method
    params: MethodParams
    values: dict[str, Any]
    constant: bool = False

    @cached_property
    def operands(self) -> dict[str, Any]:
        """:meth:`Method.operands` (computed once)."""
        return self.method.operands(self.values, self.params)

    @cached_property
    def numpy_operands(self) -> dict[str, Any]:
        """The operands as NumPy values (computed once)."""
        return engine_operands(self.operands, NUMPY_OPS)

    @cached_property
    def stack(self) -> tuple[Stack, dict[str, Any]] | None:
        """:meth:`Method.stack` (computed once)."""
        return self.method.stack(self.operands, self.params)

    def _operands(self, ops: Ops) -> dict[str, Any]:
        return self.numpy_operands if ops is NUMPY_OPS else engine_operands(self.operands, ops)

    def forward(self, x: Any, ops: Ops = NUMPY_OPS) -> Any:
        """Normalize ``x`` (NumPy float64 by default)."""
        with np.errstate(all="ignore"):
            return self.method.forward(x, self._operands(ops), self.params, ops)

    def inverse(self, y: Any, ops: Ops = NUMPY_OPS) -> Any:
        """Undo :meth:`forward`."""
        with np.errstate(all="ignore"):
            return self.method.inverse(y, self._operands(ops), self.params, ops)

    def fit_space(self, x: Any, ops: Ops = NUMPY_OPS) -> Any:
        """``x`` in the space of the fitted statistics (see :meth:`Method.fit_space`)."""
        with np.errstate(all="ignore"):
            return self.method.fit_space(x, self._operands(ops), self.params, ops)

    def describe(self) -> str:
        """One line for ``normcore inspect``."""
        return self.method.describe(self.values, self.params) + (" [constant]" if self.constant else "")

    @property
    def fit_space_map(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``fit_space`` on NumPy values when the method fits elsewhere than the raw values
        (drift and reports gather new data's statistics through it), else None."""
        return None if self.method.space is None else self.fit_space


def engine_operands(operands: Mapping[str, Any], ops: Ops) -> dict[str, Any]:
    """``operands`` as ``ops`` values: tuples become constant arrays, numbers stay numbers."""
    return {name: ops.array(value) if isinstance(value, tuple) else value for name, value in operands.items()}


#: Every method, by name (filled by :func:`register`).
METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (its module calls this once)."""
    METHODS[method.name] = method
    return method


def method_names() -> str:
    """Comma-separated method names, for error messages."""
    return ", ".join(METHODS)


def fitted_from_entry(entry: Any, where: str = "transform") -> Fitted:
    """Load an artifact ``transform`` entry: its method, parameters and fitted fields, checked.

    Raises
    ------
    ArtifactError
        The method is unknown, a parameter or fitted field is invalid (named with ``where``).
    """
    if not isinstance(entry, Mapping):
        raise ArtifactError(f"{where} must be an object")
    name = entry.get("method")
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise ArtifactError(f"{where}.method: {name!r} is not a method; expected one of {method_names()}")
    raw = entry.get("params")
    if raw is not None and not isinstance(raw, Mapping):
        raise ArtifactError(f"{where}.params: expected an object, got {raw!r}")
    try:
        params = method.params(raw or {})
    except (ValidationError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        location = ".".join(str(part) for part in first["loc"])
        raise ArtifactError(f"{where}.params{'.' + location if location else ''}: {first['msg']}") from None
    try:
        values = method.load(entry)
    except ArtifactError as exc:
        raise ArtifactError(f"{where}.{exc}") from None
    constant = entry.get("constant", False)
    if not isinstance(constant, bool):
        raise ArtifactError(f"{where}.constant: expected true or false, got {constant!r}")
    return Fitted(method, params, values, constant)


# -- checks of loaded fields ----------------------------------------------------------------------


def finite_number(entry: Mapping[str, Any], name: str, *, positive: bool = False) -> float:
    """``entry[name]`` as a finite float (``positive``: also > 0).

    Raises
    ------
    ArtifactError
        Named ``name`` (the caller prefixes the path).
    """
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArtifactError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ArtifactError(f"{name}: expected a finite number, got {value!r}")
    if positive and not value > 0:
        raise ArtifactError(f"{name}: expected a number > 0, got {value!r}")
    return value


def number_list(entry: Mapping[str, Any], name: str, *, minimum: int = 1, maximum: int = 100_000) -> tuple[float, ...]:
    """``entry[name]`` as a non-decreasing tuple of finite floats of ``minimum`` to ``maximum`` items.

    Raises
    ------
    ArtifactError
        Named ``name``.
    """
    values = entry.get(name)
    if not isinstance(values, list) or not minimum <= len(values) <= maximum:
        raise ArtifactError(f"{name}: expected a list of {minimum} to {maximum} numbers")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ArtifactError(f"{name}: expected numbers only")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ArtifactError(f"{name}: expected finite numbers")
    if np.any(np.diff(array) < 0):
        raise ArtifactError(f"{name}: expected non-decreasing numbers")
    return tuple(array.tolist())
