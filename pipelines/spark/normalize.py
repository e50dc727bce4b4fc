"""spark-submit entry point: fit, apply or run a normcore job on Spark.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \\
        pipelines/spark/normalize.py run --config configs/example.yaml

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

#: The commands that run on Spark.
COMMANDS = ("fit", "apply", "run")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``normcore <command> ... --engine spark``; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in COMMANDS:
        print(
            f"error: expected a command, one of {', '.join(COMMANDS)}; got {' '.join(arguments) or 'none'}",
            file=sys.stderr,
        )
        return 2
    if any(argument == "--engine" or argument.startswith("--engine=") for argument in arguments):
        print("error: option --engine: this entry point always runs on spark", file=sys.stderr)
        return 2
    try:
        return cli.main([*arguments, "--engine", "spark"])
    finally:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


if __name__ == "__main__":
    sys.exit(main())
