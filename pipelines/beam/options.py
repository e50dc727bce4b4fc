"""Pipeline options: from a job, its ``beam:`` config section and pass-through arguments.

``normcore ... --engine beam`` and ``python -m pipelines.beam.normalize`` build their
:class:`~apache_beam.options.pipeline_options.PipelineOptions` here, so a runner named
by ``--runner`` (or ``beam.runner`` in the config), the config's ``beam.options`` and
every standard Beam option on the command line (``--direct_num_workers``,
``--direct_running_mode``, Dataflow / Flink / Spark runner options) reach the pipeline
the same way. An argument that no Beam options class knows is an error (Beam itself
would only log and drop it).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

from normcore.config import JobConfig
from normcore.errors import ConfigError

#: Runners (as Beam resolves their names) that run in this process on the FnApiRunner, as
#: Beam's DirectRunner does for batch pipelines, without its attempt to download Prism first.
LOCAL_RUNNERS = frozenset(
    {
        "apache_beam.runners.direct.direct_runner.DirectRunner",
        "apache_beam.runners.direct.direct_runner.SwitchingDirectRunner",
        "apache_beam.runners.portability.fn_api_runner.FnApiRunner",
    }
)


def resolve_runner(name: str) -> str:
    """The runner class path ``name`` stands for, as Beam's ``create_runner`` resolves it
    (``DirectRunner``, ``direct``, ``fnapirunner`` or a dotted class path).

    Raises
    ------
    ConfigError
        A name Beam knows no runner by, or a dotted path that does not import.
    """
    from apache_beam.runners import runner as runners

    known = runners._RUNNER_MAP
    qualified = known.get(name.lower(), known.get(name.lower() + "runner", name))
    if "." not in qualified:
        raise ConfigError(
            f"option --runner: unknown Beam runner '{name}'; expected one of "
            f"{', '.join(StandardOptions.KNOWN_RUNNER_NAMES)} or a runner's dotted class path"
        )
    module, _, attribute = qualified.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attribute, None)
    except ImportError as exc:
        raise ConfigError(f"option --runner: runner '{name}' cannot be imported ({exc})") from None
    if found is None:
        raise ConfigError(f"option --runner: module '{module}' has no runner '{attribute}'")
    return qualified


def option_flags(options: dict[str, Any]) -> list[str]:
    """Command-line flags for a config ``beam.options`` mapping.

    ``True`` gives a bare flag, ``False`` / ``None`` nothing, a list one flag per item,
    anything else ``--name=value``.
    """
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + str(name).lstrip("-")
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            flags.extend(f"{flag}={item}" for item in value)
        else:
            flags.append(f"{flag}={value}")
    return flags


def pipeline_options(job: JobConfig, argv: Sequence[str] = ()) -> PipelineOptions:
    """The job's pipeline options: config ``beam.options``, then the runner, then ``argv``.

    Later flags win, so command-line arguments override the config.

    Raises
    ------
    ConfigError
        An argument that is not a Beam pipeline option (named in the message).
    """
    flags = option_flags(job.beam.options)
    if job.beam.runner:
        flags.append(f"--runner={job.beam.runner}")
    flags.extend(argv)
    options = PipelineOptions(flags)
    # Without flags nothing is unknown (and Beam logs nothing): those keys are the known ones.
    known = PipelineOptions([]).get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        raise ConfigError(
            f"unrecognized Beam pipeline option(s): {', '.join('--' + name for name in unknown)}; "
            "no Beam PipelineOptions class defines them (check the spelling)"
        )
    is_local(options)  # an unknown runner fails here, before any data is read
    return options


def is_local(options: PipelineOptions) -> bool:
    """Whether ``options`` name no runner, Beam's DirectRunner or the FnApiRunner (run in
    this process), by any name Beam accepts for them.

    Raises
    ------
    ConfigError
        The runner is unknown (see :func:`resolve_runner`).
    """
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return True
    if not isinstance(runner, str):
        return False
    return resolve_runner(runner) in LOCAL_RUNNERS


def results_are_local(options: PipelineOptions) -> bool:
    """Whether files the pipeline writes on its workers are visible to this process.

    True for local runs and for portable runners in ``LOOPBACK`` mode (their Python
    workers run in this process).
    """
    return is_local(options) or options.view_as(PortableOptions).environment_type == "LOOPBACK"


def create_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline on the runner ``options`` name; the local default is the FnApiRunner.

    Beam's ``DirectRunner`` first tries Prism (a binary it downloads) and then falls
    back to the FnApiRunner for batch pipelines; here a local run goes to the
    FnApiRunner directly, with the options served to its workers as the DirectRunner
    does, so ``--direct_num_workers`` and ``--direct_running_mode`` apply and nothing is
    downloaded.
    """
    if not is_local(options):
        return beam.Pipeline(options=options)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return beam.Pipeline(runner=fn_runner.FnApiRunner(provision_info=provision), options=options)
