"""Joining a Ray cluster (or starting an embedded one) and sizing the workers for it."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import ray

from jobs.errors import UsageError

QUIET_LOGGERS = ("ray", "ray.train", "ray.tune", "ray.data")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a clear line instead of letting ray.init retry an unreachable GCS for a minute."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT (the GCS address, e.g. 127.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(f"--address {address}: Ray cluster not reachable ({exc.strerror or exc})") from None


def runtime_env() -> dict:
    """Every Ray worker process of our jobs learns which cluster it belongs to (RAY_ADDRESS).

    Ray Train's placement-group cleaner queries the state API without an address, which fails ("multiple
    active Ray instances") when a second Ray runs on the same machine, and then the placement groups of
    finished runs are never freed. The hook is a closure so that Ray ships it by value: workers run it
    before our packages are importable.
    """
    def pin_ray_address() -> None:
        import os

        import ray

        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address

    return {"worker_process_setup_hook": pin_ray_address}


def connect(address: str | None = None, verbose: bool = False) -> None:
    """`--address`, else RAY_ADDRESS (set by `ray job submit`), else a local Ray bound to 127.0.0.1."""
    address = address or os.environ.get("RAY_ADDRESS")
    level = logging.INFO if verbose else logging.ERROR
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # Ray's own progress tables and hints are noise at the default verbosity; our loop prints its own lines.
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    common = {"logging_level": level, "log_to_driver": verbose, "ignore_reinit_error": True,
              "runtime_env": runtime_env()}
    if address:
        check_reachable(address)
        ray.init(address=address, **common)
    else:
        # The dashboard serves the state API, which Ray Train's placement-group cleaner needs to free the
        # resources of finished runs inside Tune trials; it listens on 127.0.0.1 only.
        ray.init(include_dashboard=True, dashboard_host="127.0.0.1", **common)


@dataclass(frozen=True)
class Workers:
    count: int
    use_gpu: bool
    cpus_per_worker: float
    gpus_per_worker: float = 1.0

    def resources(self) -> dict[str, float]:
        resources = {"CPU": self.cpus_per_worker}
        if self.use_gpu:
            resources["GPU"] = self.gpus_per_worker
        return resources


def plan_workers(count: int, gpu: str) -> Workers:
    """Resolve --workers/--gpu against what the cluster has; asking for more than it has is a UsageError."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    use_gpu = gpu == "on" or (gpu == "auto" and gpus >= 1)
    if use_gpu and gpus < count:
        raise UsageError(f"--gpu {gpu} with --workers {count}: the cluster has {gpus:g} GPU(s)")
    if count < 1:
        raise UsageError(f"--workers must be >= 1, got {count}")
    # On CPU the workers split the cores between them, so one worker still uses every core for torch.
    per_worker = max(1.0, float(int(cpus // count))) if not use_gpu else max(1.0, min(4.0, cpus / count))
    if per_worker * count > cpus:
        raise UsageError(f"--workers {count}: the cluster has {cpus:g} CPU(s)")
    return Workers(count, use_gpu, per_worker)
