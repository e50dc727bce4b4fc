"""Great Expectations (1.x) for normcore: the suite, its evaluation and its report.

The only module of normcore that imports ``great_expectations`` (slow to import: the
CLI imports this module only in ``validate`` and ``run``). It turns a
:class:`~normcore.quality.checks.CheckPlan` into an Expectation Suite in an
ephemeral context, evaluates it on a pandas or Spark DataFrame, accepts results of
row-level checks computed elsewhere (the local validator's streaming pass over
data larger than its sample), and writes the validation result JSON and Data Docs.

It also registers one custom expectation, ``expect_column_checksum_to_equal``,
backed by the metric ``column.normcore_checksum`` (see :mod:`normcore.quality.checksum`)
on pandas; engines that validate on their own register theirs (Spark:
``pipelines.spark.checksum``).
"""

from __future__ import annotations

import datetime
import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import great_expectations as gx
import numpy as np
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnAggregateExpectation
from great_expectations.expectations.metrics import ColumnAggregateMetricProvider, column_aggregate_value
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from great_expectations.validator.v1_validator import Validator
from jinja2 import FileSystemBytecodeCache

from normcore.quality.checks import Check, CheckPlan
from normcore.quality.checksum import series_checksum

#: Name of the suite, of the data source asset and of the Data Docs site.
SUITE_NAME = "normcore"
#: How much detail Great Expectations keeps per result (counts, a few unexpected values).
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}

Engine = Literal["pandas", "spark"]


class ColumnNormcoreChecksum(ColumnAggregateMetricProvider):
    """``column.normcore_checksum``: order-independent checksum of a column, nulls included
    (pandas; the Spark engine registers its own in ``pipelines.spark.checksum``)."""

    metric_name = "column.normcore_checksum"
    filter_column_isnull = False

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return series_checksum(column)


class ExpectColumnChecksumToEqual(ColumnAggregateExpectation):
    """Expect a column's checksum to equal ``value``: the column holds the same values
    (in any row order) as the column the checksum was taken from, on the same engine.

    Parameters
    ----------
    column : str
        The column.
    value : str
        The expected checksum, a decimal string (see :mod:`normcore.quality.checksum`).
    """

    value: str

    metric_dependencies = ("column.normcore_checksum",)
    success_keys = ("value",)
    args_keys = ("column", "value")
    library_metadata: ClassVar[dict[str, Any]] = {"maturity": "production", "tags": ["normcore"]}

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None):
        styling = (runtime_configuration or {}).get("styling", {})
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": "values must be those of the source column, in any order (checksum $value).",
                    "params": {"value": configuration.kwargs.get("value")},
                    "styling": styling,
                },
            )
        ]

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        observed = metrics["column.normcore_checksum"]
        return {"success": observed == self.value, "result": {"observed_value": observed}}


_CUSTOM = {"ExpectColumnChecksumToEqual": ExpectColumnChecksumToEqual}


class _CompiledTemplatesCached:
    """Keeps the Data Docs' compiled Jinja templates between processes (jinja2's
    ``FileSystemBytecodeCache``, in the temporary directory): compiling them takes
    longer than rendering a page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = FileSystemBytecodeCache()


class CachedJinjaPageView(_CompiledTemplatesCached, DefaultJinjaPageView):
    """Great Expectations' page view with cached compiled templates."""


class CachedJinjaIndexPageView(_CompiledTemplatesCached, DefaultJinjaIndexPageView):
    """Great Expectations' index page view with cached compiled templates."""


def _site_config(directory: Path) -> dict[str, Any]:
    """The Data Docs site under ``directory``: Great Expectations' default site with
    :class:`CachedJinjaPageView` views."""
    page = {"module_name": __name__, "class_name": CachedJinjaPageView.__name__}
    index = {"module_name": __name__, "class_name": CachedJinjaIndexPageView.__name__}
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "view": index},
        "site_section_builders": {section: {"view": page} for section in ("expectations", "validations")},
    }


def _expectation(check: Check, index: int) -> Any:
    kind = _CUSTOM.get(check.expectation) or getattr(gx.expectations, check.expectation)
    column = {} if check.column is None else {"column": check.column}
    return kind(**column, **check.kwargs, meta={"normcore_check": index, "note": check.note})


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python ones and non-finite
    floats into None, so that it serializes as strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SuiteRun:
    """One validation: an ephemeral context, the suite of a plan, and its results.

    Parameters
    ----------
    plan : CheckPlan
        The checks; expectation ``i`` carries ``meta.normcore_check = i``.
    """

    def __init__(self, plan: CheckPlan) -> None:
        self.plan = plan
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        expectations = [_expectation(check, index) for index, check in enumerate(plan.checks)]
        self.suite = self.context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
        self.results: dict[int, ExpectationValidationResult] = {}

    def evaluate(self, data: Any, engine: Engine, indices: list[int], evaluated_on: str) -> None:
        """Evaluate the checks ``indices`` with Great Expectations on ``data``.

        Parameters
        ----------
        data : pandas.DataFrame or pyspark.sql.DataFrame
        engine : {"pandas", "spark"}
        indices : list of int
            Checks of the plan to evaluate.
        evaluated_on : str
            What ``data`` is (every row, a sample), recorded in each result's meta.
        """
        if not indices:
            return
        source = (
            self.context.data_sources.add_pandas(f"{SUITE_NAME}_pandas")
            if engine == "pandas"
            else self.context.data_sources.add_spark(f"{SUITE_NAME}_spark")
        )
        batch = source.add_dataframe_asset(SUITE_NAME).add_batch_definition_whole_dataframe("whole")
        subset = gx.ExpectationSuite(
            name=f"{SUITE_NAME}_{engine}", expectations=[_expectation(self.plan.checks[i], i) for i in indices]
        )
        validator = Validator(batch_definition=batch, batch_parameters={"dataframe": data}, result_format=RESULT_FORMAT)
        for result in validator.validate_expectation_suite(subset).results:
            result.meta = {**(result.meta or {}), "evaluated_on": evaluated_on}
            self.results[result.expectation_config.meta["normcore_check"]] = _clean(result)

    def record(self, index: int, success: bool, result: Mapping[str, Any], evaluated_on: str) -> None:
        """Record check ``index`` as evaluated outside Great Expectations (same result layout)."""
        self.results[index] = ExpectationValidationResult(
            success=bool(success),
            expectation_config=_expectation(self.plan.checks[index], index).configuration,
            result=plain(dict(result)),
            meta={"evaluated_on": evaluated_on},
        )

    def suite_result(self, meta: Mapping[str, Any]) -> ExpectationSuiteValidationResult:
        """Every recorded result, in plan order, as one suite validation result."""
        missing = [i for i in range(len(self.plan.checks)) if i not in self.results]
        if missing:
            raise RuntimeError(f"checks {missing} were neither evaluated nor recorded")
        results = [self.results[i] for i in range(len(self.plan.checks))]
        passed = sum(1 for r in results if r.success)
        return ExpectationSuiteValidationResult(
            success=passed == len(results),
            results=results,
            suite_name=SUITE_NAME,
            statistics={
                "evaluated_expectations": len(results),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(results) - passed,
                "success_percent": 100.0 * passed / len(results) if results else None,
            },
            meta={"great_expectations_version": gx.__version__, **plain(dict(meta))},
        )

    def write_report(self, outcome: ExpectationSuiteValidationResult, directory: Path) -> dict[str, Path]:
        """Write ``validation_result.json`` and the Data Docs site under ``directory``.

        Returns
        -------
        dict
            ``{"json": path, "data_docs": path of the site's index.html}``.
        """
        json_path = directory / "validation_result.json"
        json_path.write_text(json.dumps(plain(outcome.to_json_dict()), indent=2, allow_nan=False) + "\n")
        site = directory / "data_docs"
        # Great Expectations substitutes ``$NAME`` in a site's path: build where no ``$`` can
        # be, then move the site into the report directory.
        with tempfile.TemporaryDirectory(prefix="normcore-docs-") as scratch:
            built = Path(scratch) / "data_docs"
            self.context.add_data_docs_site(SUITE_NAME, _site_config(built))
            run_id = RunIdentifier(run_name="normcore-validate", run_time=datetime.datetime.now(datetime.timezone.utc))
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
                run_id=run_id,
                batch_identifier="normcore",
            )
            self.context.validation_results_store.set(key, outcome)
            self.context.build_data_docs(site_names=[SUITE_NAME])
            shutil.move(built, site)
        return {"json": json_path, "data_docs": site / "index.html"}


def _clean(result: ExpectationValidationResult) -> ExpectationValidationResult:
    """Replace NumPy booleans (``expect_column_quantile_values_to_be_between`` returns
    them) so the result serializes with Great Expectations' own stores."""
    result.success = bool(result.success)
    result.result = plain(result.result)
    return result
