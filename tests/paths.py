"""Where the tests find the repository and the files beside it: one definition for every test module."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def venv_tool(path: Path, install: str) -> str:
    """PATH, a program of a venv of its own (.venv-kfp, .venv-mlflow) that INSTALL (a make target) creates: a test
    without it is skipped, or fails under CI, where `make test` has created it."""
    import os

    import pytest

    if not path.is_file():
        message = f"{path} missing: `make {install}` creates it (`make test` does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(path)
