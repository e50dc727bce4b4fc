"""Airflow 3 DAGs that run a normcore job: fit -> apply -> validate -> drift.

``normcore`` (always defined) runs the normcore CLI in four ``BashOperator`` tasks:

1. **fit** the statistics of the ``reference`` (training) data into ``artifact``, with a
   quantile sketch so that drift computes PSI: ``normcore fit REFERENCE --sketch``;
2. **apply** the artifact to the new batch ``input``, written to ``output``
   (``--overwrite``: a rerun of the task replaces its own output);
3. **validate** the normalized batch against the artifact (range conformity, nulls, row count
   and pass-through checksums against ``--source INPUT``), report in ``REPORT/validation``;
4. **drift** of the raw batch against the artifact, report in ``REPORT/drift``.

normcore exits 1 when a check fails, so a non-conforming batch fails the validate task and
the run (drift then does not run: ``upstream_failed``); exit 2 (bad input) fails the task
that got it. Every path comes from the DAG's params (trigger with ``--conf``; there is no
schedule because each run is one batch); give absolute paths, as tasks run in a temporary
directory. ``config`` is a normcore job file (features, methods, ``validation`` and ``drift``
settings, engine sections; see ``configs/local.yaml``); ``mostly`` overrides its share of
values that must lie in range (a new batch has a few values beyond the reference's extremes:
0.999 suits batches of the reference's distribution). The DAG file imports only Airflow:
normcore runs as the binary named by the ``normcore`` param, so it may live in its own
virtualenv. Params reach bash quoted by ``shlex.quote`` (the ``shell_quote`` filter).

Two variants run fit and apply on a cluster and share validate and drift (the CLI, on the
Airflow worker). Each is defined only when its provider is installed, so that without them this
file imports cleanly; both require ``config``, a job file every process of the job can read:

- ``normcore_spark`` (``apache-airflow-providers-apache-spark``): ``SparkSubmitOperator``
  submits ``SPARK_APPLICATION fit|apply ...`` (``pipelines/spark/normalize.py``) through the
  ``spark_default`` connection (master, deploy mode; leave ``spark.master`` out of the job
  file, which would override it) with ``spark.archives=SPARK_ENV#environment`` (what
  ``--archives`` sets): ``SPARK_ENV`` is a packed virtualenv holding the normcore wheel
  (``venv-pack``, see the README's PySpark section) whose ``./environment/bin/python`` runs
  PySpark on the executors (``spark.pyspark.python``) and, in cluster deploy mode, on the
  driver (``spark.pyspark.driver.python``, param ``spark_driver_python``: in client mode a
  local Python with normcore). Validation runs with ``--engine spark``.
- ``normcore_beam`` (``apache-airflow-providers-apache-beam`` and, as its operators require it,
  ``apache-airflow-providers-google``): ``BeamRunPythonPipelineOperator`` runs
  ``PYTHON -m pipelines.beam.normalize fit|apply --input=... --runner=BEAM_RUNNER``, ``PYTHON``
  an interpreter with normcore installed; remote runners take their options from the job
  file's ``beam.options`` (on Dataflow, ship the wheel with ``extra_package``).
"""

from __future__ import annotations

import shlex

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

try:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
except ImportError:  # no Spark provider: no normcore_spark DAG
    SparkSubmitOperator = None

try:
    # the Beam provider's operators (6.3) refuse to be built without the Google provider, Dataflow or not
    import airflow.providers.google  # noqa: F401
    from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
except ImportError:  # no Beam or no Google provider: no normcore_beam DAG
    BeamRunPythonPipelineOperator = None

#: The schema of a path param: required, not empty.
PATH = {"type": "string", "minLength": 1}

#: Params of every normcore DAG.
COMMON_PARAMS = {
    "normcore": Param("normcore", description="the normcore CLI binary (a path, or a name on PATH)", **PATH),
    "config": Param(None, type=["null", "string"], description="normcore job file (YAML); none: CLI defaults"),
    "reference": Param(description="reference (training) data the statistics are fitted on", **PATH),
    "input": Param(description="the new batch to normalize, validate and check for drift", **PATH),
    "artifact": Param(description="artifact JSON written by fit", **PATH),
    "output": Param(description="directory of the normalized batch (replaced)", **PATH),
    "report": Param(description="reports directory: REPORT/validation and REPORT/drift", **PATH),
    "mostly": Param(
        None,
        type=["null", "number"],
        minimum=0,
        maximum=1,
        description="share of each feature's values that must lie in range (none: the config's, else 1.0)",
    ),
}

#: The ``config`` param of the cluster variants: required.
REQUIRED_CONFIG = Param(description="normcore job file (YAML), readable by every process of the job", **PATH)


def quoted(expression: str) -> str:
    """Jinja of the value of ``expression`` quoted for bash."""
    return "{{ (" + expression + ") | shell_quote }}"


def command(*words: str) -> str:
    """A bash command running the normcore binary: ``words`` joined, then `` --config FILE`` if set."""
    config_option = "{% if params.config %} --config " + quoted("params.config") + "{% endif %}"
    return " ".join([quoted("params.normcore"), *words]) + config_option


FIT_COMMAND = command(
    "fit",
    quoted("params.reference"),
    "--artifact",
    quoted("params.artifact"),
    "--engine",
    quoted("params.engine"),
    "--sketch",
)
APPLY_COMMAND = command(
    "apply",
    quoted("params.input"),
    "--artifact",
    quoted("params.artifact"),
    "--output",
    quoted("params.output"),
    "--overwrite",
    "--engine",
    quoted("params.engine"),
)
DRIFT_COMMAND = command(
    "drift",
    quoted("params.input"),
    "--artifact",
    quoted("params.artifact"),
    "--report",
    quoted("params.report ~ '/drift'"),
)


def validate_command(engine: str) -> str:
    """The validate task's bash command; ``engine`` is validate's ``--engine`` (Jinja or a name)."""
    return command(
        "validate",
        quoted("params.output"),
        "--artifact",
        quoted("params.artifact"),
        "--source",
        quoted("params.input"),
        "--report",
        quoted("params.report ~ '/validation'"),
        "--engine",
        engine,
        "{% if params.mostly is not none %}--mostly " + quoted("params.mostly | string") + "{% endif %}",
    )


def build_dag(dag_id: str, description: str, params: dict, fit_and_apply, validate_engine: str) -> DAG:
    """The DAG ``fit >> apply >> validate >> drift`` with ``COMMON_PARAMS`` updated by ``params``.

    ``fit_and_apply()`` makes the fit and apply tasks; ``validate_engine`` is validate's
    ``--engine`` (Jinja or a name).
    """
    with DAG(
        dag_id,
        description=description,
        schedule=None,
        params={**COMMON_PARAMS, **params},
        user_defined_filters={"shell_quote": shlex.quote},
        tags=["normcore"],
        doc_md=__doc__,
    ) as dag:
        fit, apply = fit_and_apply()
        validate = BashOperator(task_id="validate", bash_command=validate_command(validate_engine))
        drift = BashOperator(task_id="drift", bash_command=DRIFT_COMMAND)
        fit >> apply >> validate >> drift
    return dag


def cli_fit_and_apply() -> tuple[BashOperator, BashOperator]:
    """fit and apply through the normcore CLI, on the engine of the ``engine`` param."""
    fit = BashOperator(task_id="fit", bash_command=FIT_COMMAND)
    apply = BashOperator(task_id="apply", bash_command=APPLY_COMMAND)
    return fit, apply


build_dag(
    "normcore",
    "normcore: fit on the reference, apply to the batch, validate, drift (CLI)",
    {"engine": Param("local", enum=["local", "beam", "spark"], description="engine of fit and apply")},
    cli_fit_and_apply,
    "{{ 'spark' if params.engine == 'spark' else 'local' }}",
)


if SparkSubmitOperator is not None:

    def spark_fit_and_apply() -> tuple[SparkSubmitOperator, SparkSubmitOperator]:
        """fit and apply as spark-submit jobs of ``pipelines/spark/normalize.py``."""
        submit = {
            "application": "{{ params.spark_application }}",
            # spark.archives is --archives; conf is templated, the operator's archives argument is not
            "conf": {
                "spark.archives": "{{ params.spark_env }}#environment",
                "spark.pyspark.python": "./environment/bin/python",
                "spark.pyspark.driver.python": "{{ params.spark_driver_python }}",
            },
        }
        fit = SparkSubmitOperator(
            task_id="fit",
            name="normcore-fit",
            application_args=[
                "fit",
                "{{ params.reference }}",
                "--artifact",
                "{{ params.artifact }}",
                "--sketch",
                "--config",
                "{{ params.config }}",
            ],
            **submit,
        )
        apply = SparkSubmitOperator(
            task_id="apply",
            name="normcore-apply",
            application_args=[
                "apply",
                "{{ params.input }}",
                "--artifact",
                "{{ params.artifact }}",
                "--output",
                "{{ params.output }}",
                "--overwrite",
                "--config",
                "{{ params.config }}",
            ],
            **submit,
        )
        return fit, apply

    build_dag(
        "normcore_spark",
        "normcore: fit and apply with spark-submit, validate (Spark), drift",
        {
            "config": REQUIRED_CONFIG,
            "spark_application": Param(description="path of pipelines/spark/normalize.py for spark-submit", **PATH),
            "spark_env": Param(description="packed virtualenv with normcore (venv-pack .tar.gz)", **PATH),
            "spark_driver_python": Param(
                "./environment/bin/python",
                description="the driver's Python: the packed env's in cluster deploy mode; in client mode"
                " (the driver runs on the Airflow worker) a local Python with normcore",
                **PATH,
            ),
        },
        spark_fit_and_apply,
        "spark",
    )


if BeamRunPythonPipelineOperator is not None:

    class NormcoreBeamOperator(BeamRunPythonPipelineOperator):
        """``BeamRunPythonPipelineOperator`` whose ``py_interpreter`` is templated too (a param)."""

        template_fields = (*BeamRunPythonPipelineOperator.template_fields, "py_interpreter")

    def beam_fit_and_apply() -> tuple[NormcoreBeamOperator, NormcoreBeamOperator]:
        """fit and apply as Beam pipelines of ``python -m pipelines.beam.normalize``."""
        # The operator runs [py_interpreter, *py_options, py_file, *pipeline options], and the
        # entry point takes its command first: the module goes in py_options, the command in py_file.
        pipeline = {
            "py_interpreter": "{{ params.python }}",
            "py_options": ["-m", "pipelines.beam.normalize"],
            "runner": "{{ params.beam_runner }}",
        }
        fit = NormcoreBeamOperator(
            task_id="fit",
            py_file="fit",
            pipeline_options={
                "input": "{{ params.reference }}",
                "artifact": "{{ params.artifact }}",
                "config": "{{ params.config }}",
                "sketch": True,
            },
            **pipeline,
        )
        apply = NormcoreBeamOperator(
            task_id="apply",
            py_file="apply",
            pipeline_options={
                "input": "{{ params.input }}",
                "artifact": "{{ params.artifact }}",
                "output": "{{ params.output }}",
                "config": "{{ params.config }}",
                "overwrite": True,
            },
            **pipeline,
        )
        return fit, apply

    build_dag(
        "normcore_beam",
        "normcore: fit and apply as Beam pipelines, validate, drift",
        {
            "config": REQUIRED_CONFIG,
            "python": Param(description="Python interpreter with normcore and Apache Beam", **PATH),
            "beam_runner": Param("DirectRunner", description="Beam runner of fit and apply", **PATH),
        },
        beam_fit_and_apply,
        "local",
    )
