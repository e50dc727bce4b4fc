"""The ``normcore`` command line.

Exit codes: 0 success; 1 a check failed (validate, drift); 2 bad input or usage,
with one line ``error: ...`` on stderr naming the file, column, key or option, and
nothing written. Beam, Spark, Great Expectations and torch are imported only by the
commands and engines that need them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from normcore.config import JobConfig, build_job, read_config_file, validation_message
from normcore.errors import CheckFailed, ConfigError, InputError, NormcoreError

Command = Callable[[argparse.Namespace, list[str]], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _add_job_options(parser: argparse.ArgumentParser, *, fit: bool, apply: bool) -> None:
    parser.add_argument("input", nargs="?", help="Parquet file or directory, or CSV file (default: config 'input')")
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
    parser.add_argument("--master", help="spark engine: master URL (default local[*])")
    parser.add_argument("--conf", action="append", metavar="K=V", help="spark engine: a Spark conf entry (repeatable)")
    parser.add_argument("--runner", help="beam engine: pipeline runner; other Beam pipeline options pass through")


def _add_quality_options(parser: argparse.ArgumentParser, input_help: str, *, spark: bool) -> None:
    parser.add_argument("input", help=input_help)
    parser.add_argument("--artifact", help="artifact JSON path (default: config 'artifact')")
    parser.add_argument("--config", help="YAML job file (its validation / drift / spark sections apply)")
    parser.add_argument("--batch-size", type=int, help="local engine: rows per Arrow batch")
    parser.set_defaults(engine=None, master=None, conf=None, runner=None)
    if spark:
        parser.add_argument("--engine", help="local (default) or spark")
        parser.add_argument("--master", help="spark engine: master URL (default local[*])")
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
}


def _option_overrides(args: argparse.Namespace) -> dict[str, Any]:
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
    overrides = _option_overrides(args)
    config: dict[str, Any] = read_config_file(args.config) if args.config else {}
    source = args.config or "options"
    if "features" in overrides:
        config["features"] = _features_over_config(overrides.pop("features"), config.get("features"))
    config.update(overrides)
    engine_sections(args, config)
    return build_job(config, source)


def _features_over_config(selected: list[Any], configured: Any) -> list[dict[str, Any]]:
    """``--features`` replaces the config's list; a column keeps its configured params
    when the option names no other method for it."""
    by_name = {f.get("name"): f for f in configured or [] if isinstance(f, dict)}
    merged = []
    for feature in selected:
        entry = feature.model_dump(exclude_none=True)
        previous = by_name.get(feature.name)
        if previous is not None and entry.get("method", previous.get("method")) == previous.get("method"):
            entry = {**previous, **entry}
        merged.append(entry)
    return merged


def engine_sections(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """Fold engine options (``--batch-size``, ``--master``, ``--conf``, ``--runner``) into ``config``."""
    if args.batch_size is not None:
        config.setdefault("local", {})["batch_size"] = args.batch_size
    if args.master is not None:
        config.setdefault("spark", {})["master"] = args.master
    for entry in args.conf or []:
        name, sep, value = entry.partition("=")
        if not sep or not name:
            raise ConfigError(f"option --conf: expected KEY=VALUE, got '{entry}'")
        config.setdefault("spark", {}).setdefault("conf", {})[name] = value
    if args.runner is not None:
        config.setdefault("beam", {})["runner"] = args.runner


def _check_engine_argv(job: JobConfig, argv: list[str]) -> None:
    if argv and job.engine != "beam":
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")


def _require(job: JobConfig, field: str, option: str) -> str:
    value = getattr(job, field)
    if not value:
        raise ConfigError(f"option {option} is required (or set '{field}' in the config)")
    return value


def _fit(job: JobConfig, argv: list[str]):
    from normcore.engines import get_engine
    from normcore.io import open_input
    from normcore.plan import resolve_plan

    engine = get_engine(job.engine)
    source = open_input(job.input)
    plan = resolve_plan(job, source.schema, source.path)
    return engine.fit(job, plan, source, argv=argv)


def _apply(job: JobConfig, artifact, argv: list[str], inverse: bool):
    from normcore.apply import BatchNormalizer
    from normcore.engines import get_engine
    from normcore.io import atomic_output_dir, open_input

    engine = get_engine(job.engine)
    source = open_input(job.input)
    BatchNormalizer(artifact).check_schema(source.schema, source.path)
    _check_not_empty(source)
    with atomic_output_dir(job.output, job.overwrite) as staging:
        counts = engine.apply(job, artifact, source, staging, inverse=inverse, argv=argv)
    return counts


def _check_not_empty(source) -> None:
    if source.format == "parquet" and source.count_rows() == 0:
        raise InputError(f"input '{source.path}' has no rows")


def _fit_and_apply(job: JobConfig, argv: list[str]):
    """Fit, then apply to the same input: in one pipeline where the engine has ``run``."""
    from normcore.engines import get_engine
    from normcore.io import atomic_output_dir, open_input
    from normcore.plan import resolve_plan

    engine = get_engine(job.engine)
    if not hasattr(engine, "run"):
        artifact = _fit(job, argv)
        return artifact, _apply(job, artifact, argv, inverse=False)
    source = open_input(job.input)
    plan = resolve_plan(job, source.schema, source.path)
    _check_not_empty(source)
    with atomic_output_dir(job.output, job.overwrite) as staging:
        artifact, counts = engine.run(job, plan, source, staging, argv=argv)
    return artifact, counts


def _print_apply_summary(output: str, counts) -> None:
    print(f"output: {output} ({counts.rows} rows)")
    if counts.unseen_key_rows:
        sample = ", ".join(sorted(counts.unseen_keys))
        print(f"unseen keys: {counts.unseen_key_rows} rows used the global statistics (e.g. {sample})")
    if counts.null_key_rows:
        print(f"null keys: {counts.null_key_rows} rows used the global statistics")


def cmd_fit(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore fit``: fit statistics and write the artifact."""
    job = load_job(args)
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    artifact = _fit(job, argv)
    artifact.save(artifact_path)
    print(f"artifact: {artifact_path} ({artifact.rows} rows, {len(artifact.feature_names)} features)")
    return 0


def cmd_apply(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore apply``: normalize (or invert) data with an artifact."""
    from normcore.artifact import load_artifact
    from normcore.io import check_output_dir

    job = load_job(args)
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    output = _require(job, "output", "--output")
    _require(job, "input", "INPUT")
    check_output_dir(output, job.overwrite)
    artifact = load_artifact(artifact_path)
    counts = _apply(job, artifact, argv, args.inverse)
    _print_apply_summary(output, counts)
    return 0


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore run``: fit + apply + validate; the artifact is written only once the output is.

    Exit 1 when the output does not conform (artifact, output and report are written).
    """
    from normcore.io import check_output_dir
    from normcore.quality.reportdir import check_report_dir
    from normcore.quality.validate import REPORT_FILE, ValidationRequest, render_summary, validate

    job = load_job(args)
    _check_engine_argv(job, argv)
    artifact_path = _require(job, "artifact", "--artifact")
    output = _require(job, "output", "--output")
    check_output_dir(output, job.overwrite)
    report = args.report or job.validation.report or f"{output.rstrip('/')}-validation"
    check_report_dir(report, REPORT_FILE)
    artifact, counts = _fit_and_apply(job, argv)
    artifact.save(artifact_path)
    engine = "spark" if job.engine == "spark" else "local"
    request = ValidationRequest(
        artifact, artifact_path, output, job.input, engine, job.validation, job.spark, job.local.batch_size
    )
    outcome = validate(request, report)
    print(render_summary(outcome))
    print(f"artifact: {artifact_path} ({artifact.rows} rows, {len(artifact.feature_names)} features)")
    _print_apply_summary(output, counts)
    print(f"validation report: {report} ({outcome.report['json'].name}, data docs {outcome.report['data_docs']})")
    _raise_if_failed(outcome)
    return 0


def _quality_job(args: argparse.Namespace) -> JobConfig:
    """The job of ``validate`` / ``drift`` / ``report``: ``--config`` with ``--artifact``,
    ``--report``, ``--mostly`` and engine options on top (INPUT is not the job's input)."""
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
    from normcore.quality.validate import failure_message

    if not outcome.success:
        raise CheckFailed(failure_message(outcome))


def cmd_validate(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore validate``: check a normalized output against its artifact (exit 1 if not conforming)."""
    from normcore.artifact import load_artifact
    from normcore.quality.validate import ValidationRequest, render_summary, validate

    if argv:
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")
    job = _quality_job(args)
    engine = _quality_engine(args, job)
    artifact_path = _require(job, "artifact", "--artifact")
    artifact = load_artifact(artifact_path)
    request = ValidationRequest(
        artifact, artifact_path, args.input, args.source, engine, job.validation, job.spark, job.local.batch_size
    )
    outcome = validate(request, job.validation.report)
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
    from normcore.artifact import load_artifact
    from normcore.io import open_input
    from normcore.quality.drift import REPORT_FILE, measure_drift, render_drift, write_drift_report
    from normcore.quality.reportdir import check_report_dir

    if argv:
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")
    job = _quality_job(args)
    artifact_path = _require(job, "artifact", "--artifact")
    artifact = load_artifact(artifact_path)
    report = job.drift.report
    if report is not None:
        check_report_dir(report, REPORT_FILE)
    outcome = measure_drift(artifact, open_input(args.input), job.drift, artifact_path, job.local.batch_size)
    print(render_drift(outcome))
    if report is not None:
        print(f"report: {write_drift_report(outcome, report)}")
    if outcome.drifted:
        raise CheckFailed(f"drift in '{args.input}': feature(s) {', '.join(outcome.drifted)}")
    return 0


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    """``normcore report``: one self-contained HTML page, before / after the artifact's transforms."""
    from normcore.artifact import load_artifact
    from normcore.io import atomic_write_text, open_input
    from normcore.quality.report import build_report, load_drift

    if argv:
        raise ConfigError(f"unrecognized arguments: {' '.join(argv)}")
    job = _quality_job(args)
    artifact_path = _require(job, "artifact", "--artifact")
    target = Path(args.output)
    if target.is_dir():
        raise ConfigError(f"option --output: '{args.output}' is a directory; expected an HTML file path")
    if target.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"option --output: '{args.output}' should end with .html")
    artifact = load_artifact(artifact_path)
    drift = load_drift(args.drift, artifact) if args.drift is not None else None
    page = build_report(artifact, artifact_path, open_input(args.input), drift, job.local.batch_size)
    atomic_write_text(target, page)
    print(f"report: {target} ({len(page) // 1024} KiB, {len(artifact.feature_names)} features)")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 check failed, 2 bad input or usage)."""
    warnings.showwarning = _show_warning
    try:
        args, extra = build_parser().parse_known_args(argv)
        return COMMANDS[args.command](args, extra)
    except NormcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
