"""spark-submit entry point: fit, apply or run a normcore job on Spark.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \\
        pipelines/spark/normalize.py run --config configs/local.yaml

The arguments are those of ``normcore fit|apply|run`` (``--engine`` is spark); the
master and the Spark conf are spark-submit's own options. Configuration, input
checks and the atomic writes are the CLI's (one code path, the same exit codes:
0 success, 1 a check failed, 2 bad input with one ``error:`` line and nothing
written); this entry point owns the SparkSession and stops it at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession

from normcore import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``normcore <command> ... --engine spark``; returns the exit code."""
    try:
        return cli.main_on_engine("spark", argv)
    finally:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


if __name__ == "__main__":
    sys.exit(main())
