"""SparkSession with sensible local defaults; one per process.

Under ``spark-submit`` the master and conf come from the submit command; run
directly, the session defaults to ``local[*]``. ``SPARK_LOCAL_IP`` defaults to
127.0.0.1 so a laptop or CI box without a resolvable hostname works, and a local
master, or a standalone cluster on this host, runs its Python workers with this
interpreter (``spark.pyspark.python``), so they import the same normcore. A
``remote`` URL (``sc://HOST:PORT``) gives a Spark Connect session instead: the server
runs the jobs, and normcore uses DataFrame operations only.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from normcore.config import SparkConfig
from normcore.errors import ConfigError

#: The root cause in a Java stack trace.
CAUSE = re.compile(r"Caused by: [\w.$]+: (.+)")

#: log4j2 configuration of a session started here (its level comes from ``log_level``).
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")

#: Defaults applied unless the caller or spark-submit sets them. Timestamps are
#: written as Parquet TIMESTAMP_MICROS (Spark's default INT96 would change the type
#: of pass-through timestamp columns).
LOCAL_DEFAULTS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
    # Parquet page checksums: written, and verified on read (as the local engine does).
    "spark.hadoop.parquet.page.write-checksum.enabled": "true",
    "spark.hadoop.parquet.page.verify-checksum.enabled": "true",
}
#: The defaults a Spark Connect client may set (session settings; the server owns the rest).
CONNECT_DEFAULTS = {key: value for key, value in LOCAL_DEFAULTS.items() if key.startswith("spark.sql.")}
#: Seconds to wait for a Spark Connect server to accept a connection.
CONNECT_TIMEOUT_S = 10
#: Names of this host in a master URL: a cluster there runs this interpreter's Python.
_THIS_HOST = {"127.0.0.1", "localhost", socket.gethostname(), socket.getfqdn()}


#: A Python exception raised in a worker, as the last line of its traceback.
_PYTHON_ERROR = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception)): (.+)$", re.MULTILINE)


def short_cause(text: str) -> str:
    """One line saying why a Spark job failed: the worker's Python exception, else the
    deepest Java cause, else the first line."""
    python = _PYTHON_ERROR.findall(text)
    if python:
        kind, message = python[-1]
        return f"{kind.rsplit('.', 1)[-1]}: {message.strip()}"
    causes = CAUSE.findall(text)
    if causes:
        return causes[-1].strip()
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else "unknown error"


def _submitted() -> bool:
    """Whether this process runs under spark-submit, which sets the master itself."""
    return "spark.master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "") or bool(os.environ.get("SPARK_ENV_LOADED"))


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no RDDs, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def session_for(spark: SparkConfig) -> SparkSession:
    """The session of a job's ``spark`` section (:func:`get_session`)."""
    return get_session(spark.master, spark.conf, log_level=spark.log_level, remote=spark.remote)


def _on_this_host(master: str) -> bool:
    """Whether every host of a ``spark://`` master URL is this machine."""
    hosts = master.removeprefix("spark://").split(",")
    return all(host.rsplit(":", 1)[0] in _THIS_HOST for host in hosts)


def _connect_session(remote: str, conf: Mapping[str, str] | None, app_name: str) -> SparkSession:
    """A Spark Connect session on ``remote``, once the server accepts a connection (the
    client would otherwise retry for ten minutes)."""
    parsed = urllib.parse.urlparse(remote.split("/;", 1)[0])
    try:
        socket.create_connection((parsed.hostname, parsed.port or 15002), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"option --remote: cannot reach the Spark Connect server '{remote}' ({exc})") from None
    builder = SparkSession.builder.remote(remote).appName(app_name)
    for key, value in {**CONNECT_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # gRPC and PySpark errors alike: no session
        raise ConfigError(
            f"option --remote: cannot start a Spark Connect session on '{remote}' ({short_cause(str(exc))})", str(exc)
        ) from None


def get_session(
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    app_name: str = "normcore",
    log_level: str | None = None,
    remote: str | None = None,
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
    log_level : str, optional
        Log level of Spark and its libraries in a session started here
        (:data:`LOG_CONFIG`); None, and any session spark-submit started, keep Spark's
        own logging.
    remote : str, optional
        A Spark Connect URL (``sc://HOST:PORT``): a Connect session there, with ``conf``
        as its session settings; ``master`` and ``log_level`` do not apply.

    Raises
    ------
    ConfigError
        The session cannot start (an unknown master URL, no reachable cluster or
        Connect server), naming ``--master`` or ``--remote``.

    Notes
    -----
    An active session is returned as it is: ``master`` and ``conf`` apply only to a
    new one. Python workers run ``spark.pyspark.python`` when ``conf`` sets it, else
    ``$PYSPARK_PYTHON``, else, with a local master or a standalone master on this host,
    ``sys.executable``; on another cluster, ship normcore (see the README).
    """
    if remote is not None:
        return _connect_session(remote, conf, app_name)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if master is None and not _submitted():
        master = "local[*]"
    settings = {**LOCAL_DEFAULTS, **(conf or {})}
    if "spark.pyspark.python" in settings:  # PySpark starts its workers with $PYSPARK_PYTHON
        os.environ["PYSPARK_PYTHON"] = settings["spark.pyspark.python"]
    elif master is not None and (
        master.startswith("local") or (master.startswith("spark://") and _on_this_host(master))
    ):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if log_level is not None and not _submitted() and "spark.driver.extraJavaOptions" not in settings:
        settings["spark.driver.extraJavaOptions"] = (
            f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} -Dnormcore.spark.logLevel={log_level.lower()}"
        )
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j, PySpark and Java errors alike: the session did not start
        raise ConfigError(
            f"option --master: cannot start a Spark session on '{master or 'spark-submit master'}' "
            f"({short_cause(str(exc))})",
            str(exc),
        ) from None
    return session
