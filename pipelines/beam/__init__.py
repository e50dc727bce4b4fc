"""normcore on Apache Beam: composite transforms, the CombineFn adapter and the engine.

Import what a pipeline needs::

    from pipelines.beam import ApplyNormalization, ComputeStats, ReadBatches

The statistics and transforms are normcore's (:mod:`normcore.stats`,
:mod:`normcore.transforms`); this package only wires them into Beam.
"""

import logging

# Importing Beam logs "apitools not found ..." through the root logger, which installs a
# stderr handler on it as a side effect (logging.basicConfig); a handler present during
# the import keeps the root logger as the application configured it.
_guard = logging.NullHandler()
_root = logging.getLogger()
_root.addHandler(_guard)
try:
    import apache_beam  # noqa: F401
finally:
    _root.removeHandler(_guard)

from pipelines.beam.combiners import AccumulatorCoder, ApplyCountsCombineFn, FeatureStatsCombineFn  # noqa: E402
from pipelines.beam.streaming import RunningNormalize, WindowedStats  # noqa: E402
from pipelines.beam.transforms import (  # noqa: E402
    METRICS_NAMESPACE,
    AccumulateStats,
    ApplyNormalization,
    ComputeStats,
    ReadBatches,
    WriteNormalized,
)

__all__ = [
    "METRICS_NAMESPACE",
    "AccumulateStats",
    "ApplyCountsCombineFn",
    "ApplyNormalization",
    "ComputeStats",
    "FeatureStatsCombineFn",
    "ReadBatches",
    "RunningNormalize",
    "AccumulatorCoder",
    "WindowedStats",
    "WriteNormalized",
]
