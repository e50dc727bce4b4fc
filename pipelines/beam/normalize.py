"""Beam entry point: ``python -m pipelines.beam.normalize fit|apply|run [INPUT] [options]``.

Fit statistics, normalize data, or both, on any Beam runner::

    python -m pipelines.beam.normalize fit data/sample --artifact stats.json
    python -m pipelines.beam.normalize apply data/sample --artifact stats.json --output out/
    python -m pipelines.beam.normalize run --input gs://B/data --artifact gs://B/stats.json \\
        --output gs://B/normalized --runner DataflowRunner --project P --region R \\
        --temp_location gs://B/tmp --extra_package dist/normcore-0.1.0-cp311-cp311-linux_x86_64.whl

This is ``normcore fit|apply|run --engine beam``: the same parser, the same commands and
the same exit codes (0 success, 1 a check failed, 2 bad input or usage with one ``error:``
line). Every argument the CLI does not know is a standard Beam pipeline option
(``--runner``, ``--direct_num_workers``, Dataflow / Flink / Spark options). INPUT,
``--artifact`` and ``--output`` may be local paths or Beam file system URLs (``gs://``,
``s3://``, ``hdfs://``; see :mod:`pipelines.beam.engine`): local outputs are staged and
moved into place as the CLI does (:mod:`normcore.paths`), a remote output directory
receives its files as Beam finalizes them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from normcore import cli


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``normcore <command> ... --engine beam``; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    return cli.main_on_engine("beam", arguments)


if __name__ == "__main__":
    sys.exit(run())
