"""Job configuration: YAML files and command-line options, validated before any data is read.

A job is a :class:`JobConfig`. ``normcore --config job.yaml`` loads the YAML,
command-line options override its keys, and the result is validated by pydantic
with ``extra="forbid"``: a misspelt key fails at start-up with its path, e.g.
``configs/job.yaml: features[1].params.feature_rnage: unknown key``.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from normcore.errors import ConfigError
from normcore.transforms import METHODS, method_names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class FeatureConfig(_Strict):
    """One selected column: its ``name``, an optional ``method`` and its ``params``."""

    name: str = Field(min_length=1)
    method: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str | None) -> str | None:
        if method is not None and method not in METHODS:
            raise ValueError(f"unknown method '{method}'; expected one of {method_names()}")
        return method


class LocalConfig(_Strict):
    """Local engine: Arrow batch size, rows per output Parquet file, and worker threads
    (default: the cores this process may use)."""

    batch_size: int = Field(131_072, ge=1)
    rows_per_file: int = Field(2_000_000, ge=1)
    workers: int | None = Field(None, ge=1)

    def worker_count(self) -> int:
        """``workers``, or the number of cores this process may run on."""
        return self.workers or len(os.sched_getaffinity(0))


class BeamConfig(_Strict):
    """Beam engine: ``runner`` and any other Beam pipeline options (``options``)."""

    runner: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    hot_key_fanout: int | None = Field(None, ge=1)


#: Master URLs Spark accepts (``local``, ``local[4]``, ``local[*,2]``, ``local-cluster[2,1,1024]``,
#: ``spark://host:port[,host:port]``, ``yarn``, ``k8s://...``).
_SPARK_MASTER = re.compile(
    r"local(\[(\d+|\*)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|yarn|k8s://\S+"
)


_SPARK_REMOTE = re.compile(r"sc://[^\s/:]+(:\d+)?(/;\S*)?")


def spark_remote_problem(remote: str) -> str | None:
    """Why ``remote`` is not a Spark Connect URL (None when it is one)."""
    if _SPARK_REMOTE.fullmatch(remote):
        return None
    return f"'{remote}' is not a Spark Connect URL; expected sc://HOST:PORT"


def spark_master_problem(master: str) -> str | None:
    """Why Spark would refuse ``master`` (None when it is well formed)."""
    if _SPARK_MASTER.fullmatch(master):
        return None
    return (
        f"'{master}' is not a Spark master URL; expected local, local[N], local[*], spark://HOST:PORT, "
        "yarn or k8s://URL"
    )


class SparkConfig(_Strict):
    """Spark engine: ``master`` URL, or ``remote`` Spark Connect URL (``sc://HOST:PORT``),
    ``conf`` entries (``spark.*`` keys) and the log level of a session normcore starts
    (``FATAL`` keeps task failures' Java logs off the terminal: normcore reports them as one
    line; ``--verbose`` sets ``WARN``)."""

    master: str | None = None
    remote: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"] = "FATAL"

    @field_validator("master")
    @classmethod
    def _spark_accepts(cls, master: str | None) -> str | None:
        problem = None if master is None else spark_master_problem(master)
        if problem:
            raise ValueError(problem)
        return master

    @field_validator("remote")
    @classmethod
    def _connect_url(cls, remote: str | None) -> str | None:
        problem = None if remote is None else spark_remote_problem(remote)
        if problem:
            raise ValueError(problem)
        return remote

    @model_validator(mode="after")
    def _master_or_remote(self) -> SparkConfig:
        if self.master is not None and self.remote is not None:
            raise ValueError("give master (a cluster) or remote (Spark Connect), not both")
        return self

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, conf: Any) -> Any:
        if not isinstance(conf, dict):
            return conf
        nested = [str(k) for k, v in conf.items() if not isinstance(v, (str, int, float, bool))]
        if nested:
            raise ValueError(f"conf values must be plain strings or numbers; {', '.join(nested)} is not")
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}


class ValidationConfig(_Strict):
    """``normcore validate`` and the last step of ``normcore run`` (see :mod:`normcore.quality`).

    Attributes
    ----------
    enabled : bool
        ``run`` ends with validation (false, or ``run --no-validate``: it stops once the
        artifact and the output are written; ``normcore validate`` can check them later).
    mostly : float in (0, 1]
        Fraction of a feature's non-missing values that must lie in its expected range.
    report : str or None
        Directory for the Great Expectations result JSON and Data Docs (``run``
        defaults to ``<output>-validation``).
    z : float
        Tolerance of the mean, standard deviation and quantile checks, in standard
        errors of the validated row count.
    quantiles : list of float in (0, 1)
        Quantiles checked for ``robust`` and ``quantile`` features.
    sample_rows : int
        Local engine: Great Expectations sees every row up to this many rows, else a
        uniform sample of this size (row-level checks still cover every row).
    seed : int
        Seed of that sample.
    """

    enabled: bool = True
    mostly: float = Field(1.0, gt=0, le=1)
    report: str | None = None
    z: float = Field(5.0, gt=0)
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95], min_length=1)
    sample_rows: int = Field(50_000, ge=100)
    seed: int = 0

    @field_validator("quantiles")
    @classmethod
    def _inside_0_1(cls, quantiles: list[float]) -> list[float]:
        outside = [q for q in quantiles if not 0 < q < 1]
        if outside:
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {outside}")
        return sorted(set(quantiles))


def _ratio_bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    if bounds is not None and not 0 <= bounds[0] <= 1 <= bounds[1]:
        raise ValueError(f"variance_ratio must satisfy 0 <= low <= 1 <= high (.inf allowed), got {list(bounds)}")
    return bounds


class DriftThresholds(_Strict):
    """Thresholds of one feature, overriding the section's (unset: inherited)."""

    max_mean_shift: float | None = Field(None, gt=0)
    variance_ratio: tuple[float, float] | None = None
    max_psi: float | None = Field(None, gt=0)

    _bounds = field_validator("variance_ratio")(_ratio_bounds)


class DriftConfig(_Strict):
    """``normcore drift``: thresholds beyond which a feature has drifted.

    Attributes
    ----------
    max_mean_shift : float
        Largest allowed ``|mean_new - mean_fit| / std_fit``.
    variance_ratio : (float, float)
        Allowed range of ``var_new / var_fit``; ``[0, .inf]`` turns the check off.
    max_psi : float
        Largest allowed population stability index over the fit's quantile bins.
    psi_bins : int
        Number of equal-mass bins of the PSI.
    report : str or None
        Directory for ``drift.json``.
    features : dict of str to DriftThresholds
        Per-feature overrides, e.g. a wide ``variance_ratio`` for a heavy-tailed
        feature whose variance is too unstable to compare.
    """

    max_mean_shift: float = Field(0.1, gt=0)
    variance_ratio: tuple[float, float] = (0.8, 1.25)
    max_psi: float = Field(0.1, gt=0)
    psi_bins: int = Field(10, ge=2, le=1000)
    report: str | None = None
    features: dict[str, DriftThresholds] = Field(default_factory=dict)

    _bounds = field_validator("variance_ratio")(_ratio_bounds)

    def for_feature(self, name: str) -> DriftThresholds:
        """The thresholds of feature ``name``: its overrides, else the section's."""
        own = self.features.get(name, DriftThresholds())
        return DriftThresholds(
            max_mean_shift=own.max_mean_shift if own.max_mean_shift is not None else self.max_mean_shift,
            variance_ratio=own.variance_ratio if own.variance_ratio is not None else self.variance_ratio,
            max_psi=own.max_psi if own.max_psi is not None else self.max_psi,
        )


class JobConfig(_Strict):
    """A fit / apply / run job.

    Attributes
    ----------
    input, artifact, output : str or None
        Data to read (Parquet file or directory, or CSV), the artifact JSON path,
        the output directory of Parquet files.
    engine : str
        ``local`` or a registered engine (``beam``, ``spark``; see :mod:`normcore.engines`).
    method : str
        Default method for selected columns without one of their own.
    ddof : {0, 1}
        Variance convention of ``zscore`` (0 population, 1 sample as Spark MLlib).
    key : str or None
        Fit statistics per value of this column.
    features : list of FeatureConfig or None
        Selected columns; ``None`` selects every integer and float column.
    sketch : bool
        Keep a quantile sketch for every feature (drift checks use it), not only
        for the methods that need one.
    overwrite : bool
        Replace an existing, non-empty output directory.
    summary : str or None
        ``run``: write the run's KPIs to this JSON file (:mod:`normcore.run_summary`).
    validation, drift : ValidationConfig, DriftConfig
        Data-quality settings of ``validate`` / ``run`` and ``drift``.
    """

    input: str | None = None
    artifact: str | None = None
    output: str | None = None
    engine: str = "local"
    method: str = "zscore"
    ddof: Literal[0, 1] = 0
    key: str | None = None
    features: list[FeatureConfig] | None = None
    sketch: bool = False
    overwrite: bool = False
    summary: str | None = None
    local: LocalConfig = Field(default_factory=LocalConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, engine: str) -> str:
        from normcore.engines import check_engine

        return check_engine(engine)

    @field_validator("method")
    @classmethod
    def _known_default_method(cls, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"unknown method '{method}'; expected one of {method_names()}")
        return method

    @model_validator(mode="after")
    def _features_are_unique(self) -> JobConfig:
        if self.features:
            names = [f.name for f in self.features]
            duplicated = sorted({n for n in names if names.count(n) > 1})
            if duplicated:
                raise ValueError(f"feature(s) listed twice: {', '.join(duplicated)}")
        return self


def _format_location(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def validation_message(error: ValidationError, source: str, prefix: str = "") -> str:
    """One line naming the source, the key path and what is wrong (first error).

    ``prefix`` is the path of the validated mapping within ``source``.
    """
    first = error.errors()[0]
    location = _format_location(first["loc"])
    if prefix:
        location = f"{prefix}.{location}" if location else prefix
    if first["type"] == "extra_forbidden":
        what = "unknown key"
    else:
        what = first["msg"].removeprefix("Value error, ")
    return f"{source}: {location}: {what}" if location else f"{source}: {what}"


@cache
def _strict_loader() -> type:
    """PyYAML's safe loader that refuses aliases (``*name``: no expansion bombs) and
    mapping keys given twice (the later one would win silently). Built on first use:
    importing PyYAML is start-up that only a job file needs."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.MarkedYAMLError(
                    problem=f"alias '*{event.anchor}' is not accepted (write the value out)",
                    problem_mark=event.start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                mark = key_node.start_mark
                if isinstance(key, (dict, list)):
                    raise yaml.MarkedYAMLError(problem="mapping keys must be plain values", problem_mark=mark)
                if key in seen:
                    raise yaml.MarkedYAMLError(problem=f"key '{key}' is given twice", problem_mark=mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML job file into a dict (not yet validated).

    Aliases and keys given twice are refused.

    Raises
    ------
    ConfigError
        Missing or unreadable file, YAML syntax error, an alias, a duplicate key, or a
        top level that is not a mapping (the message gives the line).
    """
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    import yaml

    loader = _strict_loader()(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{path}: not valid YAML{where}" + (f": {problem}" if problem else "")) from None
    finally:
        loader.dispose()
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return document


def build_job(config: dict[str, Any], source: str) -> JobConfig:
    """Validate a job dict (from YAML and/or options) into a :class:`JobConfig`.

    Method parameters are validated against their method here as well, so that a
    typo in ``features[i].params`` is reported at start-up with its path.

    Raises
    ------
    ConfigError
        The first invalid key, named by its path within ``source``.
    """
    try:
        job = JobConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, source)) from None
    for index, feature in enumerate(job.features or []):
        method = METHODS[feature.method or job.method]
        try:
            method.params(feature.params)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, source, f"features[{index}].params")) from None
    return job
