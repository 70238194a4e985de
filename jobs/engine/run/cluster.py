"""Joining a Ray cluster (or starting an embedded one) and sizing the workers for it."""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass

import ray

from jobs.engine.errors import UsageError
from jobs.engine.run.loopback import NO_PROXY_VARS, bypass_proxies
from jobs.engine.run.ray_temp import embedded_temp_dir
from jobs.engine.train.cpus import usable_cpus

QUIET_LOGGERS = ("ray", "ray.train", "ray.tune", "ray.data")


GCS_HINT = "--address is the cluster's GCS address, HOST:PORT (port 6379 by default), e.g. 127.0.0.1:6379"
TOKEN_HINT = ("set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on its head "
              "prints it)")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one clear line where ray.init would retry for minutes or end in a traceback.

    Three checks, each answered within seconds: something listens at HOST:PORT; it speaks gRPC as a Ray GCS
    does (an HTTP server, the dashboard say, does not); and it accepts our token.
    """
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    if address.startswith(("http://", "https://")):
        raise UsageError(f"--address {address}: that is a dashboard URL, the address of `ray job submit`; {GCS_HINT}")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT; {GCS_HINT}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(f"--address {address}: Ray cluster not reachable ({exc.strerror or exc}); "
                         f"{GCS_HINT}") from None
    check_gcs(address, timeout_s)


def check_gcs(address: str, timeout_s: float) -> None:
    """Ask the GCS for its cluster id, with the token ray.init would send: the cheapest call that needs both."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    # Like Ray's own channels, straight to the GCS: gRPC would otherwise send it through an https_proxy.
    with grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s, metadata=auth_metadata())
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise UsageError(f"--address {address}: the Ray cluster refused our token; {TOKEN_HINT}") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise UsageError(f"--address {address}: no answer from a Ray GCS within {timeout_s:g} s; "
                                 f"{GCS_HINT}") from None
            raise UsageError(f"--address {address}: something answers there, but not a Ray cluster's GCS "
                             f"({code.name.lower()}); {GCS_HINT}") from None


def auth_metadata() -> tuple[tuple[str, str], ...]:
    """The authorization header Ray's own clients send (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."""
    try:
        from ray._private.authentication.grpc_authentication_client_interceptor import (
            _get_authentication_metadata_tuple,
        )

        return _get_authentication_metadata_tuple()
    except (ImportError, RuntimeError):  # a Ray without token auth, or a token that cannot be read
        token = os.environ.get("RAY_AUTH_TOKEN")
        return (("authorization", f"Bearer {token}"),) if token else ()


def runtime_env() -> dict:
    """What every Ray worker process of our jobs gets: the cluster it belongs to, and no proxy between Ray's parts.

    Ray Train's placement-group cleaner queries the state API without an address, which fails ("multiple
    active Ray instances") when a second Ray runs on the same machine, and then the placement groups of
    finished runs are never freed. The hook is a closure so that Ray ships it by value: workers run it
    before our packages are importable. On a cluster the workers do not inherit the driver's environment, so
    NO_PROXY travels as env_vars, except where the submitted job set it already (Ray refuses to merge the two).
    """
    def pin_ray_address() -> None:
        import os

        import ray

        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address

    env_vars = {var: os.environ[var] for var in NO_PROXY_VARS if var in os.environ and var not in job_env_vars()}
    return {"worker_process_setup_hook": pin_ray_address, **({"env_vars": env_vars} if env_vars else {})}


def job_env_vars() -> dict[str, str]:
    """env_vars of the runtime env `ray job submit` gave this driver, if it was submitted that way."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    try:
        job_config = json.loads(os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR, "{}"))
    except json.JSONDecodeError:
        return {}
    return (job_config.get("runtime_env") or {}).get("env_vars") or {}


# ray.init's one address that always starts a new cluster: with none, Ray 2.60 joins the cluster recorded by the
# last `ray start` in TEMP/ray_current_cluster, a stranger's or a dead one (a stale record hung jobs.train), or
# any running local Ray (services.get_ray_address_from_environment, canonicalize_bootstrap_address).
EMBEDDED = "local"


def connect(address: str | None = None, verbose: bool = False) -> bool:
    """`--address`, else RAY_ADDRESS (set by `ray job submit`), else a Ray of our own bound to 127.0.0.1, on free
    ports, sized to the CPUs this process may use, with a temp dir whose socket paths fit. Returns True for the
    embedded Ray. Raises UsageError, before Ray starts, for an address that does not answer as a Ray cluster or
    a TMPDIR Ray cannot use."""
    address = address or os.environ.get("RAY_ADDRESS")
    bypass_proxies(address)
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
        return False
    temp_dir = embedded_temp_dir()
    # The dashboard serves the state API, which Ray Train's placement-group cleaner needs to free the
    # resources of finished runs inside Tune trials; it listens on 127.0.0.1 only. The GCS and the agents take free
    # ports, the dashboard the first free one from 8265. The one fixed port ray.init cannot move, the dashboard
    # agent's HTTP 52365, is only retried for ~3 s when another Ray holds it: the agent goes on without it, and an
    # embedded run does not use it (the reference sweep of the tests runs so beside the session's Ray).
    ray.init(address=EMBEDDED, num_cpus=usable_cpus(), include_dashboard=True, dashboard_host="127.0.0.1",
             **({"_temp_dir": temp_dir} if temp_dir else {}), **common)
    return True


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

    def held(self) -> dict[str, float]:
        """What all the workers hold together: a run's resources in trials.json and result.json."""
        return {k: v * self.count for k, v in self.resources().items()}


def wants_gpu(gpu: str, cluster_gpus: float) -> bool:
    """`--gpu on`, or `auto` on a cluster with any GPU: the one rule for runs, trials and retrains."""
    return gpu == "on" or (gpu == "auto" and cluster_gpus > 0)


def plan_workers(count: int, gpu: str) -> Workers:
    """Resolve --workers/--gpu against what the cluster has; asking for more than it has is a UsageError."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    use_gpu = wants_gpu(gpu, gpus)
    if use_gpu and gpus < count:
        raise UsageError(f"--gpu {gpu} with --workers {count}: the cluster has {gpus:g} GPU(s)")
    if count < 1:
        raise UsageError(f"--workers must be >= 1, got {count}")
    # On CPU the workers split the cores between them, so one worker still uses every core for torch.
    per_worker = max(1.0, float(int(cpus // count))) if not use_gpu else max(1.0, min(4.0, cpus / count))
    if per_worker * count > cpus:
        raise UsageError(f"--workers {count}: the cluster has {cpus:g} CPU(s)")
    return Workers(count, use_gpu, per_worker)


def plan_trial_workers(count: int, gpu: str, gpu_share: float, cpus_per_worker: float) -> tuple[Workers, int]:
    """Workers of one sweep trial and how many trials fit on the cluster at once (never 0, so never a deadlock).

    GPU_SHARE is the model's share of a card per worker (models.spec(name).gpu_share); raises UsageError when one
    trial needs more than the cluster has."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 1.0), total.get("GPU", 0.0)
    use_gpu = wants_gpu(gpu, gpus)
    workers = Workers(count, use_gpu, cpus_per_worker, gpu_share if use_gpu else 1.0)
    fits = int(cpus // (count * cpus_per_worker))
    if use_gpu:
        fits = min(fits, int(gpus // (gpu_share * count)))
    if fits < 1:
        raise UsageError(f"--workers {count}: one trial needs more than the cluster has ({cpus:g} CPU, {gpus:g} GPU)")
    return workers, fits
