"""SparkSession with sensible local defaults; one per process.

Under ``spark-submit`` the master and conf come from the submit command; run
directly, the session defaults to ``local[*]``. ``SPARK_LOCAL_IP`` defaults to
127.0.0.1 so a laptop or CI box without a resolvable hostname works.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pyspark.sql import SparkSession

#: Defaults applied unless the caller or spark-submit sets them.
LOCAL_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


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
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "") and not os.environ.get("SPARK_ENV_LOADED"):
        builder = builder.master("local[*]")
    for key, value in {**LOCAL_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
