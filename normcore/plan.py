"""From a job and an input schema to the list of features to fit: the fit plan.

Every engine fits a :class:`FitPlan`, so column selection, type checks and method
parameters are decided once, here, against the input's Arrow schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
from pydantic import ValidationError

from normcore.config import FeatureConfig, JobConfig, validation_message
from normcore.errors import ConfigError, InputError
from normcore.stats import ColumnRequest, KeyedStats, StatsAccumulator
from normcore.transforms import METHODS, Method, MethodParams, method_names


@dataclass(frozen=True)
class FeaturePlan:
    """One column to fit: name, input type, method and validated parameters.

    ``by_default`` marks a column the default selection (every numeric column) chose:
    the fit skips it, with a warning, when it holds no finite value, where a column the
    user named is an error.
    """

    name: str
    dtype: str
    method: str
    params: MethodParams
    sketch: bool = False
    by_default: bool = False

    @property
    def method_object(self) -> Method:
        """The :class:`~normcore.transforms.Method` of this feature."""
        return METHODS[self.method]

    def request(self) -> ColumnRequest:
        """What the statistics combiner gathers for this column (first pass)."""
        return self.method_object.request(self.name, self.params, self.sketch)


@dataclass(frozen=True)
class FitPlan:
    """Everything a fit needs besides the data."""

    features: tuple[FeaturePlan, ...]
    ddof: int = 0
    key: str | None = None

    @cached_property
    def _first_pass(self) -> tuple[ColumnRequest, ...]:
        return tuple(f.request() for f in self.features)

    def requests(self) -> list[ColumnRequest]:
        """Combiner requests of the first pass, one per feature (the same objects each call)."""
        return list(self._first_pass)

    @property
    def single_pass(self) -> bool:
        """Whether every feature fits from one pass over the data."""
        return not self.multi_pass_features()

    def multi_pass_features(self) -> list[str]:
        """Features whose method searches a parameter over several passes."""
        return [r.name for r in self._first_pass if r.search is not None]

    def next_requests(self, accumulator: StatsAccumulator, keyed: KeyedStats | None) -> list[ColumnRequest]:
        """Requests of another pass over the data, for the features whose fit needs one
        (:meth:`~normcore.transforms.Method.next_pass`); empty when every fit can finish."""
        requests = []
        for feature in self.features:
            request = feature.method_object.next_pass(
                feature.name, feature.params, accumulator.columns[feature.name], keyed
            )
            if request is not None:
                requests.append(request)
        return requests

    def columns(self) -> list[str]:
        """Columns a fit reads: the features and the key."""
        return [f.name for f in self.features] + ([self.key] if self.key else [])


def parse_feature_spec(spec: str) -> list[FeatureConfig]:
    """Parse ``--features`` (``name`` or ``name:method``, comma-separated).

    Raises
    ------
    ConfigError
        Empty names, unknown methods or duplicates, naming ``--features``.
    """
    features: list[FeatureConfig] = []
    for item in spec.split(","):
        name, _, method = item.strip().partition(":")
        name, method = name.strip(), method.strip()
        if not name:
            raise ConfigError(f"option --features: empty column name in '{spec}'")
        if method and method not in METHODS:
            raise ConfigError(
                f"option --features: unknown method '{method}' for '{name}'; expected one of {method_names()}"
            )
        features.append(FeatureConfig(name=name, method=method or None))
    names = [f.name for f in features]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"option --features: column(s) listed twice: {', '.join(duplicated)}")
    return features


def is_numeric(data_type: pa.DataType) -> bool:
    """Integers and floats; booleans, decimals and everything else are not features."""
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def is_key_type(data_type: pa.DataType) -> bool:
    """Types a ``--key`` column may have: strings, integers, booleans."""
    return (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_integer(data_type)
        or pa.types.is_boolean(data_type)
        or (pa.types.is_dictionary(data_type) and is_key_type(data_type.value_type))
    )


def _available(schema: pa.Schema) -> str:
    return ", ".join(schema.names)


def resolve_plan(job: JobConfig, schema: pa.Schema, source: str) -> FitPlan:
    """Decide what to fit from ``job`` and the input ``schema``.

    Parameters
    ----------
    job : JobConfig
        Validated job (features, method, ddof, key, sketch).
    schema : pyarrow.Schema
        The input's schema.
    source : str
        Input path, for error messages.

    Raises
    ------
    InputError
        A selected column is missing (the available ones are listed) or not
        numeric, the key column is missing or of an unsupported type, or no
        numeric column is left to normalize.
    """
    if job.key is not None:
        index = schema.get_field_index(job.key)
        if index < 0:
            raise InputError(f"key column '{job.key}' is not in '{source}'; available columns: {_available(schema)}")
        if not is_key_type(schema.field(index).type):
            raise InputError(
                f"key column '{job.key}' in '{source}' has type {schema.field(index).type}; "
                "expected a string, integer or boolean column"
            )
    by_default = job.features is None
    if by_default:
        selected = [FeatureConfig(name=f.name) for f in schema if is_numeric(f.type) and f.name != job.key]
        if not selected:
            raise InputError(f"'{source}' has no integer or float column to normalize; columns: {_available(schema)}")
    else:
        selected = list(job.features)
    features = []
    for feature in selected:
        index = schema.get_field_index(feature.name)
        if index < 0:
            raise InputError(f"column '{feature.name}' is not in '{source}'; available columns: {_available(schema)}")
        data_type = schema.field(index).type
        if not is_numeric(data_type):
            raise InputError(
                f"column '{feature.name}' in '{source}' has type {data_type}; "
                "only integer and float columns can be normalized"
            )
        if feature.name == job.key:
            raise ConfigError(f"column '{feature.name}' is the key column and cannot be a feature too")
        method = feature.method or job.method
        try:
            params = METHODS[method].params(feature.params)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, f"feature '{feature.name}'", "params")) from None
        features.append(FeaturePlan(feature.name, str(data_type), method, params, job.sketch, by_default))
    return FitPlan(tuple(features), job.ddof, job.key)
