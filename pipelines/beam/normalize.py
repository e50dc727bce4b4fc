"""Beam entry point: ``python -m pipelines.beam.normalize fit|apply|run [INPUT] [options]``.

Fit statistics, normalize data, or both, on any Beam runner::

    python -m pipelines.beam.normalize fit data/sample --artifact stats.json
    python -m pipelines.beam.normalize apply data/sample --artifact stats.json --output out/
    python -m pipelines.beam.normalize run --input gs://B/data --artifact gs://B/stats.json \\
        --output gs://B/normalized --runner DataflowRunner --project P --region R \\
        --temp_location gs://B/tmp --extra_package dist/normcore-0.1.0-py3-none-any.whl

The job options (:class:`NormalizeOptions`) are those of ``normcore fit|apply|run``;
every other argument is a standard Beam pipeline option (``--runner``,
``--direct_num_workers``, ``--direct_running_mode``, Dataflow / Flink / Spark options).
INPUT, ``--artifact`` and ``--output`` may be local paths or any Beam filesystem URL
(``gs://``, ``s3://``, ``hdfs://``); remote input must be Parquet. Local outputs are
written atomically; a remote output directory receives its files as Beam finalizes them.

Exit codes as for ``normcore``: 0 success, 2 bad input or usage with one ``error:`` line.
"""

from __future__ import annotations

import json
import posixpath
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from normcore.apply import ApplyCounts, BatchNormalizer
from normcore.artifact import Artifact, load_artifact, parse_artifact
from normcore.config import JobConfig, build_job, read_config_file
from normcore.errors import ArtifactError, ConfigError, InputError, NormcoreError
from normcore.io import InputSource, atomic_output_dir, check_output_dir, open_input
from normcore.plan import parse_feature_spec, resolve_plan
from pipelines.beam import engine

COMMANDS = ("fit", "apply", "run")


class NormalizeOptions(PipelineOptions):
    """The job options of ``pipelines.beam.normalize`` (as ``normcore``'s, Beam spelling)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--input", help="Parquet file or directory (local or a Beam filesystem URL), or CSV file")
        parser.add_argument("--artifact", help="artifact JSON path")
        parser.add_argument("--output", help="output directory of Parquet files (apply, run)")
        parser.add_argument("--config", help="YAML job file; options given here override its keys")
        parser.add_argument("--features", help="comma-separated name or name:method (default: every numeric column)")
        parser.add_argument("--method", help="method for features without their own (default zscore)")
        parser.add_argument("--key", help="fit statistics per value of this column too")
        parser.add_argument("--ddof", type=int, help="variance convention of zscore: 0 (default) or 1")
        parser.add_argument(
            "--sketch", action="store_true", default=None, help="keep a quantile sketch for every feature"
        )
        parser.add_argument(
            "--overwrite", action="store_true", default=None, help="replace an existing output directory"
        )
        parser.add_argument("--inverse", action="store_true", default=False, help="apply: invert the transforms")
        parser.add_argument("--hot_key_fanout", type=int, help="intermediate combining for skewed keys / wide data")


_JOB_KEYS = ("input", "artifact", "output", "method", "key", "ddof", "sketch", "overwrite")


def build_normalize_job(options: NormalizeOptions) -> JobConfig:
    """The job from ``--config`` (if any) with the command-line options on top, validated."""
    config: dict[str, Any] = read_config_file(options.config) if options.config else {}
    for name in _JOB_KEYS:
        value = getattr(options, name)
        if value is not None:
            config[name] = value
    if options.features is not None:
        config["features"] = [f.model_dump(exclude_none=True) for f in parse_feature_spec(options.features)]
    if options.hot_key_fanout is not None:
        config.setdefault("beam", {})["hot_key_fanout"] = options.hot_key_fanout
    config["engine"] = "beam"
    return build_job(config, options.config or "options")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a Beam filesystem URL (``gs://``, ``s3://``, ...) rather than local."""
    return "://" in path


def resolve_input(path: str | None) -> InputSource:
    """Resolve a local input with :func:`normcore.io.open_input`, a remote one with Beam's filesystems.

    A remote path is a Parquet file, a glob, or a directory (every file under it whose
    name does not start with ``.`` or ``_``).

    Raises
    ------
    InputError
        Nothing matches, a remote file is not Parquet, or it cannot be read.
    """
    if not path or not is_remote(path):
        return open_input(path)
    pattern = path if any(c in path for c in "*?[") or path.endswith(".parquet") else path.rstrip("/") + "/**"
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except Exception as exc:  # Beam raises its own BeamIOError subclasses per filesystem
        raise InputError(f"cannot list input '{path}': {exc}") from None
    files = sorted(m.path for m in matches if not posixpath.basename(m.path).startswith((".", "_")))
    if not files:
        raise InputError(f"input '{path}' holds no data files")
    if any(not f.endswith(".parquet") for f in files):
        raise InputError(f"input '{path}': remote input must be Parquet files (*.parquet)")
    try:
        with FileSystems.open(files[0]) as stream:
            schema = pq.ParquetFile(stream).schema_arrow
    except Exception as exc:
        raise InputError(f"cannot read input '{files[0]}' as parquet: {exc}") from None
    return InputSource(path, "parquet", tuple(files), schema)


def read_artifact(path: str) -> Artifact:
    """Load and verify an artifact from a local path or a Beam filesystem URL."""
    if not is_remote(path):
        return load_artifact(path)
    try:
        with FileSystems.open(path) as stream:
            document = json.loads(stream.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"artifact '{path}' is not valid JSON ({exc})") from None
    except Exception as exc:
        raise ArtifactError(f"artifact '{path}' cannot be read: {exc}") from None
    return parse_artifact(document, path)


def write_artifact(artifact: Artifact, path: str) -> None:
    """Save ``artifact`` to a local path (atomically) or a Beam filesystem URL."""
    if not is_remote(path):
        artifact.save(path)
        return
    with FileSystems.create(path, mime_type="application/json") as stream:
        stream.write(artifact.to_json().encode("utf-8"))


def _require(value: str | None, option: str) -> str:
    if not value:
        raise ConfigError(f"option {option} is required (or set it in the config)")
    return value


def _fit(job: JobConfig, argv: Sequence[str]) -> Artifact:
    source = resolve_input(job.input)
    plan = resolve_plan(job, source.schema, source.path)
    return engine.fit(job, plan, source, argv=argv)


def _apply(job: JobConfig, artifact: Artifact, argv: Sequence[str], inverse: bool) -> ApplyCounts:
    source = resolve_input(job.input)
    BatchNormalizer(artifact).check_schema(source.schema, source.path)
    if is_remote(job.output):
        return engine.apply(job, artifact, source, job.output, inverse=inverse, argv=argv)
    if source.format == "parquet" and source.count_rows() == 0:
        raise InputError(f"input '{source.path}' has no rows")
    with atomic_output_dir(job.output, job.overwrite) as staging:
        return engine.apply(job, artifact, source, staging, inverse=inverse, argv=argv)


def _run(job: JobConfig, argv: Sequence[str]) -> tuple[Artifact, ApplyCounts]:
    """Fit and apply in one pipeline (:func:`pipelines.beam.engine.run`)."""
    source = resolve_input(job.input)
    plan = resolve_plan(job, source.schema, source.path)
    if is_remote(job.output):
        return engine.run(job, plan, source, job.output, argv=argv)
    with atomic_output_dir(job.output, job.overwrite) as staging:
        return engine.run(job, plan, source, staging, argv=argv)


def _split_command(argv: Sequence[str]) -> tuple[str, list[str]]:
    """``(command, remaining arguments)``; a positional INPUT becomes ``--input``."""
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    command, rest = argv[0], list(argv[1:])
    if command not in COMMANDS:
        raise ConfigError(f"unknown command '{command}'; expected one of {', '.join(COMMANDS)}")
    if rest and not rest[0].startswith("-"):
        rest = ["--input", rest[0], *rest[1:]]
    return command, rest


def execute(argv: Sequence[str]) -> None:
    """Run one command; raises :class:`NormcoreError` on bad input or usage."""
    command, rest = _split_command(argv)
    options = NormalizeOptions(rest)
    job = build_normalize_job(options.view_as(NormalizeOptions))
    artifact_path = _require(job.artifact, "--artifact")
    if command != "fit":
        output = _require(job.output, "--output")
        if not is_remote(output):
            check_output_dir(output, job.overwrite)
    if command == "apply":
        artifact = read_artifact(artifact_path)
        counts = _apply(job, artifact, rest, options.view_as(NormalizeOptions).inverse)
        print(f"output: {job.output} ({counts.rows} rows)")
        return
    if command == "fit":
        artifact = _fit(job, rest)
    else:
        artifact, counts = _run(job, rest)
        print(f"output: {job.output} ({counts.rows} rows)")
    write_artifact(artifact, artifact_path)
    print(f"artifact: {artifact_path} ({artifact.rows} rows, {len(artifact.feature_names)} features)")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input or usage)."""
    warnings.showwarning = _show_warning
    try:
        execute(list(sys.argv[1:] if argv is None else argv))
    except NormcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
