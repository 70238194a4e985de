"""Shared fixtures: the real MNIST files, one local Ray for the whole session, and small runs through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Every Ray process a test starts binds to 127.0.0.1: set before anything imports ray (see jobs/loopback.py).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# Ray Train's controller notices a finished worker group at its next health check (every 2 s by default); the
# suite starts ~30 trainers of a few seconds' work each, so polling faster saves about a minute of CI.
os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.25"

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST IDX files: MNIST_DATA_DIR (as CI sets it) or ../shared/data/mnist."""
    folder = Path(os.environ.get("MNIST_DATA_DIR", SHARED_MNIST)).resolve()
    if not folder.is_dir():
        pytest.fail(f"MNIST files not found at {folder}; set MNIST_DATA_DIR")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path):
    from jobs.data import load_mnist

    return load_mnist(str(mnist_dir))


@pytest.fixture(scope="session")
def ray_local():
    """One embedded Ray on 127.0.0.1 (token auth as Ray 2.60 defaults), shared by every in-process run."""
    import ray

    from jobs.cluster import connect

    connect(None)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def data_ref(ray_local, mnist):
    return ray_local.put(mnist)


@pytest.fixture
def smoke_run(ray_local, data_ref, tmp_path):
    """Train MODEL on the smoke preset through Ray Train in this process; returns result.json's content."""
    from jobs import config as run_config
    from jobs.cluster import plan_workers
    from jobs.runner import train

    def run(model: str, overrides: list[str] | None = None, workers: int = 1, name: str = "run") -> dict:
        config = run_config.resolve(model, "smoke", overrides or [])
        return train(model, config, data_ref, plan_workers(workers, "off"), tmp_path, name, show_progress=False)

    return run
