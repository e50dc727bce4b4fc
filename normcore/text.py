"""How numbers are written for people (``inspect``, validation and drift summaries, reports)."""

from __future__ import annotations

import math


def number(value: object, digits: int = 6) -> str:
    """``value`` with ``digits`` significant digits; ``-`` for a missing value, ``nan`` for NaN,
    anything that is not a float as it prints."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)
