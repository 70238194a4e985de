"""The one test of "a number we can show or compute with", for every record read back from disk: JSON and pandas
hand back None, NaN, infinities, booleans and numpy scalars where a float was meant."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_finite(value: Any) -> bool:
    """True for a finite real number (int, float or a numpy scalar of either); False for None, NaN, +-inf, a bool
    (JSON's true is not a count) and anything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def finite_or_none(value: Any) -> Any:
    """VALUE, with a NaN or infinite float replaced by None: what a record stores (JSON has no NaN)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
