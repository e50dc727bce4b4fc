"""Turn merged statistics into an artifact: the last step of every engine's fit.

Engines differ only in how they produce :class:`~normcore.stats.StatsAccumulator`
objects (a loop, a Beam ``CombineFn``, Spark partitions); they all finish with
:func:`build_artifact`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from normcore import __version__
from normcore.artifact import FORMAT, VERSION, Artifact
from normcore.errors import InputError
from normcore.io import require_rows
from normcore.plan import FeaturePlan, FitPlan
from normcore.stats import ColumnRequest, ColumnStats, KeyedStats, StatsAccumulator
from normcore.transforms import FitRefused

#: Percentiles listed in the artifact (readable summary of each sketch).
SUMMARY_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


class ConstantFeatureWarning(UserWarning):
    """A feature has zero spread; its scale was set to 1."""


class EmptyFeatureWarning(UserWarning):
    """Columns of the default selection hold no finite value; they were left out."""


def _feature_entry(
    feature: FeaturePlan, column: ColumnStats, ddof: int, where: str
) -> tuple[dict[str, Any], bool]:
    method = feature.method_object
    moments = column.moments
    if method.uses_variance(feature.params) and not math.isfinite(moments.std(0)):
        raise InputError(f"column '{feature.name}'{where}: its standard deviation overflows float64")
    try:
        fit = method.fit(column, feature.params, ddof)
    except FitRefused as exc:
        raise InputError(f"column '{feature.name}'{where}: {exc}; rescale it or choose another method") from None
    stats = fit.stats if fit.stats is not None else moments.summary()
    sketch = fit.sketch if fit.sketch is not None else column.sketch
    if sketch is not None:
        quantiles = sketch.to_dict()
        percentiles = sketch.percentiles(list(SUMMARY_PERCENTILES))
        quantiles["percentiles"] = {str(p): float(v) for p, v in zip(SUMMARY_PERCENTILES, percentiles, strict=True)}
        stats["quantiles"] = quantiles
    transform = {
        "method": feature.method,
        "params": feature.params.model_dump(mode="json"),
        "kind": method.kind,
        **fit.values,
        "constant": fit.constant,
        **fit.details,
    }
    return {"dtype": feature.dtype, "stats": stats, "transform": transform}, fit.constant


def _check_fittable(name: str, column: ColumnStats, where: str) -> None:
    m = column.moments
    if m.count == 0:
        raise InputError(
            f"column '{name}'{where} has no finite value to fit "
            f"({m.null_count} null, {m.nan_count} NaN, {m.inf_count} inf)"
        )


Gather = Callable[[Sequence[ColumnRequest]], tuple[StatsAccumulator, "KeyedStats | None"]]


def fit_in_passes(
    plan: FitPlan, gather: Gather, *, engine: str, source: str | None = None
) -> Artifact:
    """Gather statistics in as many passes as the plan's methods need, then fit.

    Parameters
    ----------
    plan : FitPlan
    gather : callable
        ``gather(requests) -> (accumulator, keyed)``: one pass of the engine over the data
        for these column requests (keyed per ``plan.key``; ``keyed`` is None without a
        key). Every engine provides one; this loop is the same for all of them.
    engine, source : str
        Recorded in the artifact.

    Returns
    -------
    Artifact

    Notes
    -----
    Most plans take one pass. A method that searches a parameter (``power``) asks for
    further passes (:meth:`FitPlan.next_requests`); their search states are merged into
    the first pass's statistics, so the fit sees every pass.
    """
    accumulator, keyed = gather(plan.requests())
    while accumulator.rows and (requests := plan.next_requests(accumulator, keyed)):
        more, more_keyed = gather(requests)
        _absorb(accumulator, more)
        for value, state in (more_keyed or {}).items():
            _absorb(keyed[value], state)
    return build_artifact(plan, accumulator, keyed, engine=engine, source=source)


def _absorb(accumulator: StatsAccumulator, more: StatsAccumulator) -> None:
    for name, column in more.columns.items():
        if column.search is not None:
            target = accumulator.columns[name]
            target.search = column.search if target.search is None else target.search.merge(column.search)


def build_artifact(
    plan: FitPlan,
    accumulator: StatsAccumulator,
    keyed: Mapping[str | None, StatsAccumulator] | None = None,
    *,
    engine: str,
    source: str | None = None,
) -> Artifact:
    """Fit every planned feature and assemble the artifact.

    Parameters
    ----------
    plan : FitPlan
        Features, methods, ddof and key.
    accumulator : StatsAccumulator
        Statistics over all rows. With a key, pass the merge of ``keyed``.
    keyed : mapping of str or None to StatsAccumulator, optional
        Statistics per key value (string form, see :mod:`normcore.keys`); the
        ``None`` entry (rows with a null key) feeds only the global statistics.
    engine : str
        Recorded in the artifact.
    source : str, optional
        Input path, recorded in the artifact.

    Returns
    -------
    Artifact

    Raises
    ------
    InputError
        No rows, or a feature without any finite value.

    Warns
    -----
    ConstantFeatureWarning
        For each feature with zero spread (and, with a key, once per feature for
        all key values where it is constant).
    """
    require_rows(accumulator.rows, source)
    where = f" in '{source}'" if source else ""
    empty = [f.name for f in plan.features if f.by_default and accumulator.columns[f.name].moments.count == 0]
    if empty and len(empty) < len(plan.features):
        warnings.warn(
            f"column(s) {', '.join(empty)}{where} hold no finite value and are not normalized "
            "(name them in --features to make this an error)",
            EmptyFeatureWarning,
            stacklevel=2,
        )
        plan = dataclasses.replace(plan, features=tuple(f for f in plan.features if f.name not in empty))
    features: dict[str, Any] = {}
    for feature in plan.features:
        column = accumulator.columns[feature.name]
        _check_fittable(feature.name, column, where)
        features[feature.name], constant = _feature_entry(feature, column, plan.ddof, where)
        if constant:
            warnings.warn(
                f"feature '{feature.name}' is constant (zero spread); its scale is set to 1",
                ConstantFeatureWarning,
                stacklevel=2,
            )
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "engine": engine,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "normcore_version": __version__,
        "rows": accumulator.rows,
        "ddof": plan.ddof,
        "key": plan.key,
        "features": features,
    }
    if source is not None:
        document["source"] = source
    if plan.key is not None:
        document["keys"] = _keyed_entries(plan, keyed or {}, where)
    return Artifact(document)


def _keyed_entries(plan: FitPlan, keyed: Mapping[str | None, StatsAccumulator], where: str) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    constant_keys: dict[str, int] = {}
    values = sorted(v for v in keyed if v is not None)
    for value in values:
        accumulator = keyed[value]
        features = {}
        for feature in plan.features:
            column = accumulator.columns[feature.name]
            if column.moments.count == 0:
                continue  # no finite value for this key: apply falls back to the global entry
            features[feature.name], constant = _feature_entry(
                feature, column, plan.ddof, f"{where} (key {plan.key} = '{value}')"
            )
            constant_keys[feature.name] = constant_keys.get(feature.name, 0) + constant
        entries[value] = {"rows": accumulator.rows, "features": features}
    for name, count in constant_keys.items():
        if count:
            warnings.warn(
                f"feature '{name}' is constant within {count} of {len(values)} key values; their scale is set to 1",
                ConstantFeatureWarning,
                stacklevel=3,
            )
    return entries
