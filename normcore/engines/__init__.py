"""Engines: where a fit or an apply runs. Each is a module with two functions.

``fit(job, plan, source, *, argv=()) -> Artifact`` and
``apply(job, artifact, source, output_dir, *, inverse=False, argv=()) -> ApplyCounts``.
``output_dir`` is a fresh staging directory that the caller renames into place on
success; ``argv`` carries engine options the CLI did not parse itself (Beam
pipeline options). An engine may also offer
``run(job, plan, source, output_dir, *, argv=()) -> (Artifact, ApplyCounts)``, fit and
apply in one job (Beam: one pipeline, the artifact as a side input); ``normcore run``
uses it when present. Engine modules are imported only when used, so the CLI does
not load Beam or Spark for a local job.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from normcore.errors import ConfigError

ENGINE_MODULES = {
    "local": "normcore.engines.local",
    "beam": "pipelines.beam.engine",
    "spark": "pipelines.spark.engine",
}


def get_engine(name: str) -> ModuleType:
    """Import and return the engine module called ``name``."""
    if name not in ENGINE_MODULES:
        raise ConfigError(f"option --engine: unknown engine '{name}'; expected one of {', '.join(ENGINE_MODULES)}")
    return importlib.import_module(ENGINE_MODULES[name])
