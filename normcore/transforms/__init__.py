"""Normalization methods, their fitted parameters and the NumPy reference apply."""

from normcore.transforms.fitted import (
    FittedTransform,
    LinearTransform,
    QuantileTransform,
    normal_clip_bounds,
    transform_from_dict,
)
from normcore.transforms.methods import (
    METHODS,
    Fit,
    Method,
    MethodParams,
    decimal_exponent,
    fit_method,
    method_names,
)

__all__ = [
    "METHODS",
    "Fit",
    "FittedTransform",
    "LinearTransform",
    "Method",
    "MethodParams",
    "QuantileTransform",
    "decimal_exponent",
    "fit_method",
    "method_names",
    "normal_clip_bounds",
    "transform_from_dict",
]
