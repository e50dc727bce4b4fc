"""The ``normcore`` command line.

Exit codes: 0 success; 1 a check failed (validate, drift); 2 bad input or usage,
with one line ``error: ...`` on stderr naming the file, column, key or option, and
nothing written. Beam, Spark, Great Expectations and torch are imported only by the
commands and engines that need them.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from normcore.errors import CheckFailed, ConfigError, NormcoreError
from normcore.paths import Place, Target, Writes, check_disjoint, local_path, os_error_text, writing
from normcore.run_summary import RunMeter, render_run_summary, summary_document, summary_json, summary_target

if TYPE_CHECKING:
    from normcore.artifact import Artifact
    from normcore.config import JobConfig
    from normcore.io import InputSource

Command = Callable[[argparse.Namespace, list[str]], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _add_job_options(parser: argparse.ArgumentParser, *, fit: bool, apply: bool) -> None:
    parser.add_argument("input", nargs="?", help="Parquet file or directory, or CSV file (default: config 'input')")
    parser.add_argument("--input", dest="input_option", metavar="INPUT", help="INPUT as an option (Beam's spelling)")
    parser.add_argument("--artifact", help="artifact JSON path (default: config 'artifact')")
    parser.add_argument("--config", help="YAML job file; options given here override its keys")
    parser.add_argument("--engine", help="local (default), beam or spark")
    if fit:
        parser.add_argument("--features", help="comma-separated name or name:method (default: every numeric column)")
        parser.add_argument("--method", help="method for features without their own (default zscore)")
        parser.add_argument("--key", help="fit statistics per value of this column too")
        parser.add_argument("--ddof", type=int, help="variance convention of zscore: 0 (default) or 1")
        parser.add_argument(
            "--sketch", action="store_true", default=None, help="keep a quantile sketch for every feature"
        )
    if apply:
        parser.add_argument("--output", help="output directory of Parquet files")
        parser.add_argument(
            "--overwrite", action="store_true", default=None, help="replace an existing output directory"
        )
    parser.add_argument("--batch-size", type=int, help="local engine: rows per Arrow batch")
    parser.add_argument("--workers", type=int, help="local engine: worker threads (default: the cores)")
    parser.add_argument("--master", help="spark engine: master URL (default local[*])")
    parser.add_argument("--remote", metavar="sc://HOST:PORT", help="spark engine: a Spark Connect server")
    parser.add_argument("--conf", action="append", metavar="K=V", help="spark engine: a Spark conf entry (repeatable)")
    parser.add_argument("--runner", help="beam engine: pipeline runner; other Beam pipeline options pass through")
    parser.add_argument(
        "--hot-key-fanout", "--hot_key_fanout", dest="hot_key_fanout", type=int,
        help="beam engine: intermediate combining for skewed keys or wide data",
    )  # fmt: skip


def _add_quality_options(parser: argparse.ArgumentParser, input_help: str, *, spark: bool) -> None:
    parser.add_argument("input", help=input_help)
    parser.add_argument("--artifact", help="artifact JSON path (default: config 'artifact')")
    parser.add_argument("--config", help="YAML job file (its validation / drift / spark sections apply)")
    parser.add_argument("--batch-size", type=int, help="local engine: rows per Arrow batch")
    parser.add_argument("--workers", type=int, help="local engine: worker threads (default: the cores)")
    parser.set_defaults(engine=None, master=None, remote=None, conf=None, runner=None)
    if spark:
        parser.add_argument("--engine", help="local (default) or spark")
        parser.add_argument("--master", help="spark engine: master URL (default local[*])")
        parser.add_argument("--remote", metavar="sc://HOST:PORT", help="spark engine: a Spark Connect server")
        parser.add_argument(
            "--conf", action="append", metavar="K=V", help="spark engine: a Spark conf entry (repeatable)"
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``normcore`` argument parser (sub-commands registered in :data:`COMMANDS`)."""
    parser = _Parser(prog="normcore", description="Exact feature statistics and normalization.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    fit = commands.add_parser("fit", help="fit statistics and write the artifact")
    _add_job_options(fit, fit=True, apply=False)
    apply = commands.add_parser("apply", help="normalize data with an artifact")
    _add_job_options(apply, fit=False, apply=True)
    apply.add_argument("--inverse", action="store_true", help="apply the inverse transforms")
    run = commands.add_parser("run", help="fit + apply + validate, as configured (exit 1 if not conforming)")
    _add_job_options(run, fit=True, apply=True)
    run.add_argument(
        "--report", help="validation report directory (default: config validation.report, else OUTPUT-validation)"
    )
    run.add_argument(
        "--no-validate",
        action="store_true",
        help="stop once the artifact and the output are written (config: validation.enabled: false)",
    )
    run.add_argument("--summary", help="write the run's KPIs (rows, wall_s, rows_per_s, ...) to this JSON file")
    validate = commands.add_parser(
        "validate", help="check a normalized output against its artifact (exit 1 if not conforming)"
    )
    _add_quality_options(validate, "normalized data: Parquet file or directory, or CSV file", spark=True)
    validate.add_argument("--source", help="the data INPUT was made from: expected row count and pass-through columns")
    validate.add_argument("--report", help="directory for the validation result JSON and Data Docs")
    validate.add_argument("--mostly", type=float, help="share of values that must lie in range (default 1.0)")
    drift = commands.add_parser("drift", help="compare new data's statistics with the artifact (exit 1 on drift)")
    _add_quality_options(drift, "new (raw) data: Parquet file or directory, or CSV file", spark=False)
    drift.add_argument("--report", help="directory for drift.json")
    report = commands.add_parser(
        "report", help="one self-contained HTML page: before / after histograms and statistics"
    )
    _add_quality_options(report, "raw data: Parquet file or directory, or CSV file", spark=False)
    report.add_argument("--output", required=True, help="HTML file to write")
    report.add_argument("--drift", help="a drift report (drift.json, or its directory) to include")
    inspect = commands.add_parser("inspect", help="show an artifact as a readable table")
    inspect.add_argument("path", help="artifact JSON path")
    inspect.add_argument("--key", help="show the statistics of this key value")
    inspect.add_argument("--json", action="store_true", help="print the artifact JSON")
    for command in commands.choices.values():
        command.add_argument("--verbose", action="store_true", help="show engines' stack traces with errors")
    return parser


_OPTION_KEYS = {
    "input": "input",
    "artifact": "artifact",
    "engine": "engine",
    "method": "method",
    "key": "key",
    "ddof": "ddof",
    "sketch": "sketch",
    "output": "output",
    "overwrite": "overwrite",
    "summary": "summary",
}


def _option_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from pydantic import ValidationError

    from normcore.config import JobConfig, validation_message

    if getattr(args, "input_option", None) is not None:
        if args.input is not None:
            raise ConfigError("INPUT is given twice (as an argument and as --input)")
        args.input = args.input_option
    overrides: dict[str, Any] = {}
    for attribute, key in _OPTION_KEYS.items():
        value = getattr(args, attribute, None)
        if value is not None:
            overrides[key] = value
    try:
        JobConfig.model_validate(overrides)
    except ValidationError as exc:
        message = validation_message(exc, "options")
        raise ConfigError("option --" + message.removeprefix("options: ")) from None
    if getattr(args, "features", None) is not None:
        from normcore.plan import parse_feature_spec

        overrides["features"] = parse_feature_spec(args.features)
    return overrides


def load_job(args: argparse.Namespace) -> JobConfig:
    """The job from ``--config`` (if any) with command-line options on top, validated."""
    from normcore.config import build_job, read_config_file

    overrides = _option_overrides(args)
    config: dict[str, Any] = read_config_file(args.config) if args.config else {}
    source = args.config or "options"
    if "features" in overrides:
        config["features"] = _features_over_config(overrides.pop("features"), config.get("features"))
    config.update(overrides)
    engine_sections(args, config)
    return build_job(config, source)


def _features_over_config(selected: list[Any], configured: Any) -> list[dict[str, Any]]:
    """``--features`` selects the columns; each keeps what the config says of it, the option
    winning only on what it names: a ``:method`` replaces the configured method (and drops
    the params, which belong to that method) unless it names the same one."""
    by_name = {f.get("name"): f for f in configured or [] if isinstance(f, dict)}
    merged = []
    for feature in selected:
        entry = dict(by_name.get(feature.name) or {"name": feature.name})
        if feature.method is not None and feature.method != entry.get("method"):
            entry = {"name": feature.name, "method": feature.method}
        merged.append(entry)
    return merged


def engine_sections(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """Fold engine options (``--batch-size``, ``--workers``, ``--master``, ``--remote``,
    ``--conf``, ``--runner``) into ``config``."""
    from normcore.config import spark_master_problem, spark_remote_problem

    if args.batch_size is not None:
        config.setdefault("local", {})["batch_size"] = args.batch_size
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise ConfigError(f"option --workers: {args.workers} is not a number of threads (at least 1)")
        config.setdefault("local", {})["workers"] = args.workers
    if args.master is not None:
        problem = spark_master_problem(args.master)
        if problem:
            raise ConfigError(f"option --master: {problem}")
        config.setdefault("spark", {})["master"] = args.master
    if getattr(args, "remote", None) is not None:
        problem = spark_remote_problem(args.remote)
        if problem:
            raise ConfigError(f"option --remote: {problem}")
        config.setdefault("spark", {})["remote"] = args.remote
        if args.master is None:  # --remote replaces the config's master
            config["spark"].pop("master", None)
    for entry in args.conf or []:
        name, sep, value = entry.partition("=")
        if not sep or not name:
            raise ConfigError(f"option --conf: expected KEY=VALUE, got '{entry}'")
        config.setdefault("spark", {}).setdefault("conf", {})[name] = value
    if args.runner is not None:
        config.setdefault("beam", {})["runner"] = args.runner
    if getattr(args, "hot_key_fanout", None) is not None:
        config.setdefault("beam", {})["hot_key_fanout"] = args.hot_key_fanout
    if getattr(args, "verbose", False):
        config.setdefault("spark", {})["log_level"] = "WARN"


def _check_engine_argv(job: JobConfig, argv: list[str]) -> None:
    if argv and job.engine != "beam":
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")


def _require(job: JobConfig, field: str, option: str) -> str:
    value = getattr(job, field)
    if not value:
        raise ConfigError(f"option {option} is required (or set '{field}' in the config)")
    return value


# -- where a command reads and writes ---------------------------------------------------------------


def _source_reads(source: InputSource, role: str = "input") -> list[Place]:
    """``source`` and each of its files that lies elsewhere (through a symbolic link)."""
    places = [Place(role, source.path)]
    if not source.local:  # a URL: no local file of it can be written
        return places
    root = os.path.realpath(local_path(source.path))
    for path in source.files:
        real = os.path.realpath(path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            places.append(Place(f"{role} file", path))
    return places


def _config_reads(args: argparse.Namespace) -> list[Place]:
    return [Place("--config", args.config)] if getattr(args, "config", None) else []


class _Storage:
    """How a command reaches its paths on ``engine``: local paths through :mod:`normcore.paths`;
    URLs through the engine where it has its own file systems (Beam), written in place."""

    def __init__(self, engine: ModuleType) -> None:
        self.engine = engine

    def remote(self, path: str) -> bool:
        return getattr(self.engine, "is_remote", lambda _: False)(path)

    def open_input(self, job: JobConfig) -> InputSource:
        """The job's input, resolved by the engine where it has its own readers."""
        if hasattr(self.engine, "open_input"):
            return self.engine.open_input(job.input, job)
        from normcore.io import open_input

        return open_input(job.input)

    def load_artifact(self, path: str) -> Artifact:
        from normcore.artifact import load_artifact

        return getattr(self.engine, "read_artifact", load_artifact)(path)

    def target(self, target: Target) -> Target | None:
        """``target``, or None when its path is remote (the engine writes it in place)."""
        return None if self.remote(target.path) else target

    def save_artifact(self, artifact: Artifact, target: Target | None, path: str) -> None:
        if target is None:
            self.engine.write_artifact(artifact, path)
            return
        with writing("--artifact", path):
            target.staging.write_text(artifact.to_json(), encoding="utf-8")


def _writes(reads: list[Place], targets: dict[str, tuple[Target | None, str]]) -> Writes:
    """:class:`Writes` of the local targets; remote ones are checked against the reads too."""
    remote = [Place(role, path) for role, (target, path) in targets.items() if target is None]
    check_disjoint(reads, remote)
    return Writes(reads, [t for t, _ in targets.values() if t is not None], also_written=remote)


def _output_target(output: str, overwrite: bool, command: str) -> Target:
    return Target("--output", output, "dir", overwrite, what="output directory", command=command)


def _report_target(report: str, command: str) -> Target:
    return Target("--report", report, "dir", overwrite=True, what="report directory", command=command)


# -- commands -----------------------------------------------------------------------------------------


def _check_not_empty(source: InputSource) -> None:
    from normcore.io import require_rows

    if source.format == "parquet" and source.files:
        require_rows(source.count_rows(), source.path)


def _print_apply_summary(output: str, counts) -> None:
    print(f"output: {output} ({counts.rows} rows)")
    if counts.unseen_key_rows:
        sample = ", ".join(sorted(counts.unseen_keys))
        print(f"unseen keys: {counts.unseen_key_rows} rows used the global statistics (e.g. {sample})")
    if counts.null_key_rows:
        print(f"null keys: {counts.null_key_rows} rows used the global statistics")


def cmd_fit(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore fit``: fit statistics and write the artifact."""
    from normcore.artifact import artifact_target
    from normcore.engines import get_engine
    from normcore.plan import resolve_plan

    job = load_job(args)
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    engine = get_engine(job.engine)
    storage = _Storage(engine)
    source = storage.open_input(job)
    plan = resolve_plan(job, source.schema, source.path)
    target = storage.target(artifact_target(artifact_path))
    with _writes([*_source_reads(source), *_config_reads(args)], {"--artifact": (target, artifact_path)}):
        artifact = engine.fit(job, plan, source, argv=argv)
        storage.save_artifact(artifact, target, artifact_path)
    print(f"artifact: {artifact_path} ({artifact.rows} rows, {len(artifact.feature_names)} features)")
    return 0


def cmd_apply(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore apply``: normalize (or invert) data with an artifact."""
    from normcore.apply import BatchNormalizer
    from normcore.engines import get_engine

    job = load_job(args)
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    output = _require(job, "output", "--output")
    _require(job, "input", "INPUT")
    engine = get_engine(job.engine)
    storage = _Storage(engine)
    source = storage.open_input(job)
    artifact = storage.load_artifact(artifact_path)
    BatchNormalizer(artifact).check_schema(source.schema, source.path)
    target = storage.target(_output_target(output, job.overwrite, "apply"))
    reads = [*_source_reads(source), Place("--artifact", artifact_path), *_config_reads(args)]
    with _writes(reads, {"--output": (target, output)}):
        _check_not_empty(source)
        with writing("--output", output):
            counts = engine.apply(
                job, artifact, source, target.staging if target else output, inverse=args.inverse, argv=argv
            )
    _print_apply_summary(output, counts)
    return 0


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore run``: fit + apply + validate; the artifact is written only once the output is.

    Exit 1 when the output does not conform (artifact, output and report are written).
    Without validation (``--no-validate``, ``validation.enabled: false``) it is ``fit`` and
    ``apply`` in one process.
    """
    from normcore.artifact import artifact_target
    from normcore.engines import get_engine
    from normcore.plan import resolve_plan

    meter = RunMeter.start()
    job = load_job(args)
    validating = job.validation.enabled and not args.no_validate
    if args.report is not None and not validating:
        off = "--no-validate" if args.no_validate else f"{args.config}: validation.enabled is false"
        raise ConfigError(f"option --report: there is no validation report to write ({off})")
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    output = _require(job, "output", "--output")
    engine = get_engine(job.engine)
    meter.watch_tasks(getattr(engine, "task_seconds", None))
    storage = _Storage(engine)
    source = storage.open_input(job)
    plan = resolve_plan(job, source.schema, source.path)
    output_target = storage.target(_output_target(output, job.overwrite, "run"))
    artifact_file = storage.target(artifact_target(artifact_path))
    targets = {"--output": (output_target, output)}
    report_target = None
    if validating and output_target is not None:  # a remote output is validated by the engine's own pipeline
        report = args.report or job.validation.report or f"{output.rstrip('/')}-validation"
        report_target = _report_target(report, "validate")
        targets["--report"] = (report_target, report)
    targets["--artifact"] = (artifact_file, artifact_path)
    summary_file = summary_target(job.summary) if job.summary else None
    if summary_file is not None:
        targets["--summary"] = (summary_file, job.summary)
    with _writes([*_source_reads(source), *_config_reads(args)], targets) as writes:
        _check_not_empty(source)
        destination = output_target.staging if output_target else output
        with writing("--output", output):
            if hasattr(engine, "run"):  # fit and apply in one job (Beam: one pipeline)
                artifact, counts = engine.run(job, plan, source, destination, argv=argv)
            else:
                artifact = engine.fit(job, plan, source, argv=argv)
                counts = engine.apply(job, artifact, source, destination, argv=argv)
        storage.save_artifact(artifact, artifact_file, artifact_path)
        writes.commit(*[t for t in (output_target, artifact_file) if t is not None])
        outcome = None
        if report_target is not None:
            from normcore.quality.validate import ValidationRequest, validate

            request = ValidationRequest(
                artifact,
                artifact_path,
                output,
                job.input,
                "spark" if job.engine == "spark" else "local",
                job.validation,
                job.spark,
                job.local.batch_size,
                job.local.worker_count(),
            )
            outcome = validate(request, report_target)
        kpis = summary_document(
            meter,
            engine=job.engine,
            rows=counts.rows,
            conformity=None if outcome is None else outcome.conformity,
            artifact=artifact_path,
            output=output,
            report=None if report_target is None else report_target.path,
        )
        if summary_file is not None:
            with writing("--summary", job.summary):
                summary_file.staging.write_text(summary_json(kpis), encoding="utf-8")
    if outcome is not None:
        from normcore.quality.render import render_summary

        print(render_summary(outcome))
    print(f"artifact: {artifact_path} ({artifact.rows} rows, {len(artifact.feature_names)} features)")
    _print_apply_summary(output, counts)
    if not validating:
        print(f"validation: off; check the output with normcore validate {output} --artifact {artifact_path}")
    elif outcome is None:
        print(f"validation: skipped, the output '{output}' is remote (the pipeline measured its conformity)")
    else:
        written = outcome.report
        print(f"validation report: {report_target.path} ({written['json'].name}, data docs {written['data_docs']})")
    print(render_run_summary(kpis) + (f" (KPIs in {job.summary})" if job.summary else ""))
    if outcome is not None:
        _raise_if_failed(outcome)
    return 0


def _quality_job(args: argparse.Namespace) -> JobConfig:
    """The job of ``validate`` / ``drift`` / ``report``: ``--config`` with ``--artifact``,
    ``--report``, ``--mostly`` and engine options on top (INPUT is not the job's input)."""
    from normcore.config import build_job, read_config_file

    config: dict[str, Any] = read_config_file(args.config) if args.config else {}
    if args.artifact is not None:
        config["artifact"] = args.artifact
    report = getattr(args, "report", None)
    if report is not None:
        section = "drift" if args.command == "drift" else "validation"
        config.setdefault(section, {})["report"] = report
    if getattr(args, "mostly", None) is not None:
        config.setdefault("validation", {})["mostly"] = args.mostly
    engine_sections(args, config)
    return build_job(config, args.config or "options")


def _quality_engine(args: argparse.Namespace, job: JobConfig) -> str:
    """``--engine`` (local or spark); without it, spark for a Spark job, else local."""
    if args.engine is None:
        return "spark" if job.engine == "spark" else "local"
    if args.engine not in ("local", "spark"):
        raise ConfigError(f"option --engine: '{args.engine}' is not supported here; expected local or spark")
    return args.engine


def _raise_if_failed(outcome) -> None:
    from normcore.quality.render import failure_message

    if not outcome.success:
        raise CheckFailed(failure_message(outcome))


def _quality_start(args: argparse.Namespace, argv: list[str]) -> tuple[JobConfig, str, Artifact]:
    """The job, artifact path and artifact of ``validate`` / ``drift`` / ``report``."""
    from normcore.artifact import load_artifact

    if argv:
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")
    job = _quality_job(args)
    artifact_path = _require(job, "artifact", "--artifact")
    return job, artifact_path, load_artifact(artifact_path)


def _quality_reads(args: argparse.Namespace, source: InputSource, artifact_path: str) -> list[Place]:
    return [*_source_reads(source), Place("--artifact", artifact_path), *_config_reads(args)]


def cmd_validate(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore validate``: check a normalized output against its artifact (exit 1 if not conforming)."""
    from normcore.io import open_input
    from normcore.quality.render import render_summary
    from normcore.quality.validate import ValidationRequest, open_source, validate

    job, artifact_path, artifact = _quality_start(args, argv)
    engine = _quality_engine(args, job)
    reads = _quality_reads(args, open_input(args.input), artifact_path)
    if args.source is not None:
        reads += _source_reads(open_source(args.source), "--source")
    report = job.validation.report
    targets = {"--report": (_report_target(report, "validate"), report)} if report else {}
    request = ValidationRequest(
        artifact, artifact_path, args.input, args.source, engine, job.validation, job.spark,
        job.local.batch_size, job.local.worker_count(),
    )  # fmt: skip
    with _writes(reads, targets):
        outcome = validate(request, targets["--report"][0] if targets else None)
    print(render_summary(outcome))
    _raise_if_failed(outcome)
    return 0


def cmd_inspect(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore inspect``: the artifact as a readable table."""
    from normcore.artifact import load_artifact
    from normcore.display import render_artifact

    if argv:
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")
    artifact = load_artifact(args.path)
    if args.json:
        sys.stdout.write(artifact.to_json())
        return 0
    if args.key is not None and not artifact.has_key(args.key):
        raise ConfigError(f"option --key: '{args.key}' is not a key value of '{args.path}'")
    print(render_artifact(artifact, Path(args.path).name, args.key))
    return 0


def cmd_drift(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore drift``: new data's statistics against the artifact's (exit 1 on drift)."""
    from normcore.io import open_input
    from normcore.quality.drift import measure_drift, render_drift, write_drift_report

    job, artifact_path, artifact = _quality_start(args, argv)
    source = open_input(args.input)
    report = job.drift.report
    target = _report_target(report, "drift") if report is not None else None
    with _writes(_quality_reads(args, source, artifact_path), {"--report": (target, report)} if target else {}):
        outcome = measure_drift(
            artifact, source, job.drift, artifact_path, job.local.batch_size, job.local.worker_count()
        )
        written = write_drift_report(outcome, target) if target is not None else None
    print(render_drift(outcome))
    if written is not None:
        print(f"report: {written}")
    if outcome.drifted:
        raise CheckFailed(f"drift in '{args.input}': feature(s) {', '.join(outcome.drifted)}")
    return 0


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore report``: one self-contained HTML page, before / after the artifact's transforms."""
    from normcore.io import open_input
    from normcore.paths import file_starts_with
    from normcore.quality.report import GENERATOR, build_report, load_drift

    if Path(args.output).is_dir():
        raise ConfigError(f"option --output: '{args.output}' is a directory; expected an HTML file path")
    if Path(args.output).suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"option --output: '{args.output}' should end with .html")
    job, artifact_path, artifact = _quality_start(args, argv)
    target = Target(
        "--output", args.output, "file", overwrite=True, ours=file_starts_with(GENERATOR), what="report page"
    )
    source = open_input(args.input)
    reads = _quality_reads(args, source, artifact_path) + ([Place("--drift", args.drift)] if args.drift else [])
    with _writes(reads, {"--output": (target, args.output)}):
        drift = load_drift(args.drift, artifact) if args.drift is not None else None
        page = build_report(artifact, artifact_path, source, drift, job.local.batch_size, job.local.worker_count())
        with writing("--output", args.output):
            target.staging.write_text(page, encoding="utf-8")
    print(f"report: {args.output} ({len(page) // 1024} KiB, {len(artifact.feature_names)} features)")
    return 0


#: Sub-command name -> handler. Handlers return the exit code.
COMMANDS: dict[str, Command] = {
    "fit": cmd_fit,
    "apply": cmd_apply,
    "run": cmd_run,
    "validate": cmd_validate,
    "drift": cmd_drift,
    "report": cmd_report,
    "inspect": cmd_inspect,
}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


#: The commands an engine's own entry point runs (spark-submit, ``python -m pipelines.beam.normalize``).
ENGINE_COMMANDS = ("fit", "apply", "run")


def main_on_engine(engine: str, argv: Sequence[str] | None = None) -> int:
    """``normcore <command> ... --engine ENGINE`` for an engine's own entry point."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ENGINE_COMMANDS:
        got = " ".join(arguments) or "none"
        print(f"error: expected a command, one of {', '.join(ENGINE_COMMANDS)}; got {got}", file=sys.stderr)
        return 2
    if any(argument == "--engine" or argument.startswith("--engine=") for argument in arguments):
        print(f"error: option --engine: this entry point always runs on {engine}", file=sys.stderr)
        return 2
    return main([*arguments, "--engine", engine])


def _reuse_large_allocations() -> None:
    """Keep freed batch-sized arrays in the heap for the next batch (glibc ``mallopt``).

    By default glibc maps every array over 128 KiB afresh and unmaps it when freed, so
    each temporary of a batch costs page faults; a command that streams batches of the
    same size reuses them instead (memory stays bounded by the batch size).
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc
    mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
    mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 check failed, 2 bad input or usage)."""
    warnings.showwarning = _show_warning
    _reuse_large_allocations()
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in arguments
    try:
        args, extra = build_parser().parse_known_args(arguments)
        return COMMANDS[args.command](args, extra)
    except NormcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.detail and verbose:
            print(exc.detail, file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"error: {os_error_text(exc)}{where}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The ``normcore`` executable (and ``python -m normcore.cli``): :func:`main`, then exit.

    Finalizing the interpreter (clearing pyarrow, NumPy, pydantic and normcore module by
    module) takes 60-80 ms, longer than a small job itself, and has nothing left to do
    once a command has returned: its outputs are closed and moved into place. So the
    process ends right after the interpreter's own exit steps that matter: non-daemon
    threads are joined and every exit handler registered later (an engine's, such as
    PySpark's for its JVM) runs, and then, the last handler, this flushes stdout and
    stderr and ends the process (``os._exit``). Only a normal return takes the quick
    exit; an uncaught exception finalizes as usual.

    Two settings apply unless the environment sets them already. The process skips
    pydantic's search of every installed package for plugins (``PYDANTIC_DISABLE_PLUGINS``):
    ~12 ms of each command's start-up here, spent to instrument models that are normcore's
    own. And NumPy's OpenBLAS starts no thread pool (``OPENBLAS_NUM_THREADS=1``): no command
    multiplies matrices, yet at import OpenBLAS starts a thread per core that spins for
    work, ~0.1 CPU-s a process here, on the cores the workers read and write on.
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    returned: list[int] = []
    atexit.register(_exit_quickly, returned)
    code = main()
    returned.append(code)
    sys.exit(code)


def _exit_quickly(returned: list[int]) -> None:
    if not returned:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nothing more can reach it
    os._exit(returned[0])


if __name__ == "__main__":
    run()
