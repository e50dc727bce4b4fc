"""SparkSession with sensible local defaults; one per process.

Under ``spark-submit`` the master and conf come from the submit command; run
directly, the session defaults to ``local[*]``. ``SPARK_LOCAL_IP`` defaults to
127.0.0.1 so a laptop or CI box without a resolvable hostname works, and a local
master runs its Python workers with this interpreter (``PYSPARK_PYTHON``), so they
import the same normcore.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

#: Defaults applied unless the caller or spark-submit sets them. Timestamps are
#: written as Parquet TIMESTAMP_MICROS (Spark's default INT96 would change the type
#: of pass-through timestamp columns).
LOCAL_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
}


def _submitted() -> bool:
    """Whether this process runs under spark-submit, which sets the master itself."""
    return "spark.master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "") or bool(os.environ.get("SPARK_ENV_LOADED"))


def get_session(
    master: str | None = None, conf: Mapping[str, str] | None = None, app_name: str = "normcore"
) -> SparkSession:
    """Return the active SparkSession, or create one.

    Parameters
    ----------
    master : str, optional
        Master URL (``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://...``).
        Default: what spark-submit set, else ``local[*]``.
    conf : mapping of str to str, optional
        Extra ``spark.*`` settings (they override :data:`LOCAL_DEFAULTS`).
    app_name : str

    Notes
    -----
    An active session is returned as it is: ``master`` and ``conf`` apply only to a
    new one. With a local master and no ``PYSPARK_PYTHON`` set, Python workers run
    ``sys.executable``; on a cluster, set ``spark.pyspark.python`` (see the README).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master is None and not _submitted():
        master = "local[*]"
    if master is not None and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in {**LOCAL_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
