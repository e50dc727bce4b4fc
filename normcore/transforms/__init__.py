"""Normalization methods: each one object (parameters, statistics, fit, forward / inverse).

:mod:`normcore.transforms.base` defines what a method is and holds the registry
(:data:`METHODS`); each module below registers its methods when imported. Adding a
method is one module here (and its import below); nothing outside this package changes.
"""

from normcore.transforms import linear, log, power, quantile  # noqa: F401  (register the methods)
from normcore.transforms.base import (
    METHODS,
    FitRefused,
    FitResult,
    Fitted,
    Method,
    MethodParams,
    fitted_from_entry,
    method_names,
)
from normcore.transforms.linear import decimal_exponent
from normcore.transforms.quantile import normal_clip_bounds

__all__ = [
    "METHODS",
    "FitRefused",
    "FitResult",
    "Fitted",
    "Method",
    "MethodParams",
    "decimal_exponent",
    "fitted_from_entry",
    "method_names",
    "normal_clip_bounds",
]
