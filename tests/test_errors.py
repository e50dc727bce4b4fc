"""Normcore errors raised in remote workers come back as themselves."""

from __future__ import annotations

from normcore.errors import ConfigError, InputError, error_from_traceback

TRACEBACK = """org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 3.0 failed
Traceback (most recent call last):
  File "/work/main/normcore/fitting.py", line 80, in build_artifact
normcore.errors.ConfigError: an earlier error
  File "/work/main/normcore/stats/combiner.py", line 12, in add_batch
normcore.errors.InputError: column 'price' has type string, expected an integer or float type
	at org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException
"""


def test_the_last_normcore_error_of_a_traceback_is_rebuilt() -> None:
    error = error_from_traceback(TRACEBACK)
    assert type(error) is InputError
    assert str(error) == "column 'price' has type string, expected an integer or float type"
    assert type(error_from_traceback("normcore.errors.ConfigError: bad key")) is ConfigError


def test_other_errors_and_unknown_names_give_none() -> None:
    assert error_from_traceback("ValueError: something else") is None
    assert error_from_traceback("normcore.errors.NotAnError: x") is None
    assert error_from_traceback("normcore.errors.error_from_traceback: x") is None
