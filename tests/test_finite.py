"""The one finite-number test (jobs/engine/finite.py), and no copy of it elsewhere."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

from jobs.engine.finite import finite_or_none, is_finite
from tests.test_layers import our_modules


@pytest.mark.parametrize(("value", "expected"), [
    (1, True), (0.5, True), (np.float32(1.5), True), (np.int64(3), True), (-1e300, True),
    (None, False), (math.nan, False), (math.inf, False), (-math.inf, False), (np.float64("nan"), False),
    (True, False), ("1", False), ([1], False)])
def test_what_counts_as_a_finite_number(value, expected):
    assert is_finite(value) is expected


def test_a_record_stores_none_for_nan_and_infinity():
    assert finite_or_none(math.nan) is None and finite_or_none(math.inf) is None
    assert finite_or_none(0.25) == 0.25 and finite_or_none("x") == "x" and finite_or_none(None) is None


def test_no_module_keeps_a_copy_of_its_own():
    copies = [f"{module}.{node.name}" for module, path in our_modules().items()
              for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)
              and node.name.lstrip("_") in ("finite", "is_finite", "num", "is_num") and module != "jobs.engine.finite"]
    assert copies == []
