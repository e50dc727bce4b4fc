"""Apply on Spark: the artifact's transforms as native Column expressions.

The formulas are each method's ``forward`` / ``inverse`` (:mod:`normcore.transforms`),
evaluated with :class:`SparkOps`, so a normalized column is a plain Catalyst expression: no Python UDF, no
VectorAssembler, nothing leaves the JVM. Each fitted column is replaced by its float64
result under the same name and position; other columns pass through untouched. NaN
and +-inf pass through, nulls stay null.

Fitted arrays (a method's tuple operands: quantiles and their tables) enter the plan as one literal each (a JSON
text that Spark's optimizer folds into an array constant). Values the formulas use
several times are computed once per row as intermediate columns (``bind``), dropped
at the end.

With a keyed artifact each row looks its key up once in a literal map ``key value ->
index``; the index selects the key's parameters in a literal array, and a null or
unseen key, or a key that had no finite value of a feature, falls back to the global
parameters; no join is needed. Spark casts the key to string as :mod:`normcore.keys`
names key values: integers in decimal, booleans ``true`` / ``false``, strings as they
are. The map lookup scans the keys, which suits up to a few thousand key values.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from normcore.apply import ApplyCounts
from normcore.artifact import Artifact
from normcore.transforms import Fitted
from normcore.transforms.base import engine_operands
from pipelines.spark.frames import quote

#: Distinct unseen key values fetched for the run summary.
UNSEEN_SAMPLE = 20
#: Prefix of the intermediate columns (dropped before the result is returned).
PREFIX = "__normcore_"
_KEY_INDEX = PREFIX + "key"


def json_literal(value: Any, data_type: T.DataType) -> Column:
    """A constant of ``data_type`` from JSON text: one plan node, folded into a literal."""
    return F.from_json(F.lit(json.dumps(value, allow_nan=False)), data_type)


class SparkOps:
    """:class:`normcore.transforms.expressions.Ops` on Spark Columns.

    Parameters
    ----------
    max_points : int
        Longest array :meth:`search` will see; it sets the steps of the search.
    prefix : str
        Names of the intermediate columns made by :meth:`bind`.

    Attributes
    ----------
    bindings : list of (str, Column)
        Intermediate columns in the order they must be computed.

    Notes
    -----
    :meth:`search` is a binary search in a SQL higher-order function (``aggregate`` over
    the powers of two, a JVM lambda, not Python): its expression stays small whatever
    the number of points, and it works on per-row arrays (keyed artifacts) as well as
    on literal ones.
    """

    def __init__(self, max_points: int = 1, prefix: str = PREFIX) -> None:
        self._steps = [1 << k for k in range(max(max_points, 1).bit_length() - 1, -1, -1)]
        self._prefix = prefix
        self.bindings: list[tuple[str, Column]] = []

    def bind(self, value: Column) -> Column:
        name = f"{self._prefix}{len(self.bindings)}"
        self.bindings.append((name, value))
        return F.col(name)

    def where(self, condition: Column | bool, if_true: Any, if_false: Any) -> Any:
        if isinstance(condition, bool):  # a test on fitted numbers: known when the plan is built
            return if_true if condition else if_false
        return F.when(condition, if_true).otherwise(if_false)

    def is_finite(self, x: Column) -> Column:
        return ~F.isnan(x) & (F.abs(x) != math.inf)

    def log(self, x: Column) -> Column:
        return F.log(x)

    def sqrt(self, x: Column) -> Column:
        return F.sqrt(x)

    def exp(self, x: Column) -> Column:
        return F.exp(x)

    def log1p(self, x: Column) -> Column:
        return F.log1p(x)

    def expm1(self, x: Column) -> Column:
        return F.expm1(x)

    def abs(self, x: Column) -> Column:
        return F.abs(x)

    def sign(self, x: Column) -> Column:
        return F.signum(x)

    def clip(self, x: Column, low: float, high: float) -> Column:
        return F.least(F.greatest(x, F.lit(low)), F.lit(high))

    def clip_finite(self, y: Column, x: Column, low: float, high: float) -> Column:
        return self.where(self.is_finite(x), self.clip(y, low, high), x)

    def array(self, values: Sequence[float]) -> Column:
        return json_literal([float(v) for v in values], T.ArrayType(T.DoubleType()))

    def search(self, points: Column, x: Column) -> Column:
        # Largest count c with points[c - 1] <= x, built from the highest power of two down;
        # get() is null past the end, which keeps the count.
        return F.aggregate(
            F.lit(self._steps),
            F.lit(0),
            lambda count, step: F.when(F.get(points, count + step - 1) <= x, count + step).otherwise(count),
        )

    def gather(self, values: Column, index: Any) -> Column:
        return F.get(values, index)


def _struct_type(operands: Mapping[str, Any]) -> T.StructType:
    """The Spark type of a method's operands: arrays for tuples, doubles for numbers."""
    return T.StructType(
        [
            T.StructField(name, T.ArrayType(T.DoubleType()) if isinstance(value, tuple) else T.DoubleType())
            for name, value in operands.items()
        ]
    )


class _FeatureParameters:
    """One feature's fitted transforms: global, and per key value that fitted it."""

    def __init__(self, artifact: Artifact, name: str, slot: str, keyed_features: dict[str, set[str]]) -> None:
        self.name = name
        self.slot = slot
        self.fitted: Fitted = artifact.transform(name)
        self.keyed = {
            value: artifact.transform(name, value) for value, names in keyed_features.items() if name in names
        }

    @property
    def struct_type(self) -> T.StructType:
        return _struct_type(self.fitted.operands)

    def keyed_values(self, value: str) -> dict[str, Any] | None:
        """The operands of key ``value`` as JSON-able values (None: use the global ones)."""
        fitted = self.keyed.get(value)
        if fitted is None:
            return None
        return {k: list(v) if isinstance(v, tuple) else float(v) for k, v in fitted.operands.items()}

    def max_points(self) -> int:
        fitted = [self.fitted, *self.keyed.values()]
        return max((len(v) for f in fitted for v in f.operands.values() if isinstance(v, tuple)), default=1)

    def expression(self, x: Column, lookup: Column | None, inverse: bool, ops: SparkOps) -> Column:
        """The normalized (or inverted) ``x``; ``lookup`` is the row's keyed parameters."""
        operands = engine_operands(self.fitted.operands, ops)
        if lookup is not None:
            keyed = {}
            for name, fallback in operands.items():
                value = F.coalesce(lookup[self.slot][name], F.lit(fallback))
                keyed[name] = value if isinstance(self.fitted.operands[name], tuple) else ops.bind(value)
            operands = keyed
        method, params = self.fitted.method, self.fitted.params
        if inverse:
            return method.inverse(x, operands, params, ops)
        return method.forward(x, operands, params, ops)


def key_string(frame: DataFrame, artifact: Artifact) -> Column:
    """The artifact's key column of ``frame`` as Spark strings (the normcore.keys rule)."""
    return frame[quote(artifact.key)].cast("string")


def key_index(artifact: Artifact, key: Column) -> Column:
    """Position of ``key`` among the artifact's key values; null when null or unseen."""
    positions = {value: index for index, value in enumerate(artifact.key_values)}
    return F.try_element_at(json_literal(positions, T.MapType(T.StringType(), T.IntegerType())), key)


def _parameter_array(artifact: Artifact, parameters: list[_FeatureParameters]) -> Column:
    entries = [{p.slot: p.keyed_values(value) for p in parameters} for value in artifact.key_values]
    row_type = T.StructType([T.StructField(p.slot, p.struct_type) for p in parameters])
    return json_literal(entries, T.ArrayType(row_type))


def normalize_frame(frame: DataFrame, artifact: Artifact, *, inverse: bool = False) -> DataFrame:
    """``frame`` with every fitted column normalized (or inverted) in place, as float64.

    Parameters
    ----------
    frame : DataFrame
        Holds every feature of ``artifact`` (and its key column when keyed).
    artifact : Artifact
    inverse : bool, default False
        Apply the inverse transforms.

    Returns
    -------
    DataFrame
        Same columns in the same order; the features are DoubleType.
    """
    keyed_features = {value: set(entry["features"]) for value, entry in artifact.document.get("keys", {}).items()}
    parameters = [
        _FeatureParameters(artifact, name, f"f{index}", keyed_features)
        for index, name in enumerate(artifact.feature_names)
    ]
    staged, lookup = frame, None
    if artifact.key is not None and artifact.key_values:
        staged = staged.withColumn(_KEY_INDEX, key_index(artifact, key_string(frame, artifact)))
        lookup = F.get(_parameter_array(artifact, parameters), F.col(_KEY_INDEX))
    results: dict[str, Column] = {}
    levels: dict[int, dict[str, Column]] = defaultdict(dict)
    for feature in parameters:
        ops = SparkOps(feature.max_points(), f"{PREFIX}{feature.slot}_")
        results[feature.name] = feature.expression(frame[quote(feature.name)].cast("double"), lookup, inverse, ops)
        for level, (name, value) in enumerate(ops.bindings):
            levels[level][name] = value
    for level in sorted(levels):
        staged = staged.withColumns(levels[level])
    return staged.select(
        *[results[name].alias(name) if name in results else staged[quote(name)] for name in frame.columns]
    )


def key_counts(frame: DataFrame, artifact: Artifact) -> ApplyCounts:
    """Rows of ``frame`` whose key is null or unseen at fit time (they use the global
    parameters), and up to ``UNSEEN_SAMPLE`` unseen key values; ``rows`` is left at 0.

    One aggregate over the key column (Parquet reads that column only), and a second
    query for the sample when some key is unseen.
    """
    key = key_string(frame, artifact)
    unseen = key.isNotNull() & key_index(artifact, key).isNull()
    totals = frame.agg(F.count_if(key.isNull()).alias("null"), F.count_if(unseen).alias("unseen")).first()
    counts = ApplyCounts(null_key_rows=int(totals["null"]), unseen_key_rows=int(totals["unseen"]))
    if counts.unseen_key_rows:
        sample = frame.select(key.alias("key")).where(unseen).distinct().limit(UNSEEN_SAMPLE)
        counts.unseen_keys = {row.key for row in sample.collect()}
    return counts
