"""Engines: where a fit or an apply runs. Each is a module with two functions.

``fit(job, plan, source, *, argv=()) -> Artifact`` and
``apply(job, artifact, source, output_dir, *, inverse=False, argv=()) -> ApplyCounts``.
``output_dir`` is a fresh staging directory that the caller moves into place on
success; ``argv`` carries engine options the CLI did not parse itself (Beam pipeline
options). An engine may also offer
``run(job, plan, source, output_dir, *, argv=()) -> (Artifact, ApplyCounts)``, fit and
apply in one job (Beam: one pipeline, the artifact as a side input), which ``normcore
run`` then uses; ``validate(request) -> ValidationOutcome``, evaluating the checks of
:mod:`normcore.quality` itself (Spark); and ``open_input`` / ``read_artifact`` /
``write_artifact`` / ``is_remote`` for URLs of its own file systems (Beam).

The local engine is built in. Other engines register themselves as entry points of the
group ``normcore.engines`` (``pyproject.toml``: ``beam = "pipelines.beam.engine"``), so
normcore never imports them by name; a module is imported only when its engine is used,
so the CLI does not load Beam or Spark for a local job.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from normcore.errors import ConfigError

#: The entry point group engines register in.
ENTRY_POINT_GROUP = "normcore.engines"
#: The built-in engine.
LOCAL = "local"


@cache
def engine_modules() -> dict[str, str]:
    """Engine name -> module path: the local engine, then every registered one."""
    from importlib.metadata import entry_points  # reading the installed packages: not for a local job

    registered = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    return {LOCAL: "normcore.engines.local", **{k: v for k, v in registered.items() if k != LOCAL}}


def check_engine(name: str) -> str:
    """``name`` if an engine of that name exists.

    Raises
    ------
    ValueError
        Listing the engines there are.
    """
    if name != LOCAL and name not in engine_modules():
        raise ValueError(f"unknown engine '{name}'; expected one of {', '.join(engine_modules())}")
    return name


def get_engine(name: str) -> ModuleType:
    """Import and return the engine module called ``name``."""
    try:
        check_engine(name)
    except ValueError as exc:
        raise ConfigError(f"option --engine: {exc}") from None
    return importlib.import_module(engine_modules()[name] if name != LOCAL else "normcore.engines.local")
