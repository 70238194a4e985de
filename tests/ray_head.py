"""A real Ray head on 127.0.0.1 that a test owns, and worker nodes joined to it: each started in its own process
group, stopped by its id."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from tests.paths import REPO

RAY = str(Path(sys.executable).parent / "ray")  # the CLI of the venv that runs the tests
# The ports of a node's agents: every fixed default gets a free one instead (see `ray_head`).
NODE_PORTS = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
              "metrics-export-port")


class RayHead(NamedTuple):
    url: str  # the dashboard: `ray job submit --address URL`
    env: dict[str, str]  # the environment of a client of this head: it carries the token
    address: str = ""  # the GCS, HOST:PORT: what a driver's --address and a worker node's `ray start` join
    temp_dir: str = ""  # the head's --temp-dir: its sessions, and the ray_current_cluster record of `ray start`


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(request: str | urllib.request.Request, process: subprocess.Popen, what: str,
                       log: Callable[[], str] = lambda: "", timeout_s: float = 120, every_s: float = 0.25) -> None:
    """Return once REQUEST (a URL of a server PROCESS started) answers; a RuntimeError naming WHAT, with the tail of
    LOG, once PROCESS has exited or TIMEOUT_S seconds have passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(request, timeout=2).close()  # noqa: S310 - a server of ours on 127.0.0.1
            return
        except OSError:  # refused, reset, timed out, or an HTTP error before the server is ready
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.poll() is not None else f"{timeout_s:.0f} s"
                raise RuntimeError(f"{what} did not start ({state}): {log()[-3000:]}") from None
            time.sleep(every_s)


def wait_for_dashboard(url: str, token: str, head: subprocess.Popen, timeout_s: float = 120) -> None:
    request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    wait_until_answers(request, head, f"Ray's dashboard at {url}", timeout_s=timeout_s, every_s=1)


@contextmanager
def ray_head(num_cpus: int = 2, settings: dict[str, str] | None = None, num_gpus: int = 0) -> Iterator[RayHead]:
    """A head of its own for the block; the session's shared one is conftest's `ray_head_cluster`. SETTINGS are
    extra environment variables of the head (Ray's system settings, `RAY_<name>`) and of its clients. NUM_GPUS is
    what the head advertises, whether or not the machine has them."""
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(settings or {})}
    env.pop("RAY_ADDRESS", None)
    gcs_port, dashboard_port = free_port(), free_port()
    # Every fixed default port gets a free one: the session's embedded Ray already holds the agent's 52365, and a
    # dashboard agent that cannot bind takes its raylet down, which leaves the head with no job agent at all.
    agent_ports = [f"--{flag}={free_port()}" for flag in (*NODE_PORTS, "ray-client-server-port")]
    # Ray's socket paths must stay short, so the temp dir lives directly under /tmp.
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    log = open(Path(temp_dir) / "head.log", "w")  # noqa: SIM115 - closed below
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={gcs_port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}", "--disable-usage-stats", f"--temp-dir={temp_dir}",
         *agent_ports],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_dashboard(url, token, head)
        yield RayHead(url, env, f"127.0.0.1:{gcs_port}", temp_dir=temp_dir)
    finally:
        stop_group(head)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def ray_nodes(head: RayHead, count: int = 1, num_cpus: int = 1) -> Iterator[list[subprocess.Popen]]:
    """COUNT worker nodes of NUM_CPUS each joined to HEAD on 127.0.0.1 under its token, each a process group of
    its own; yields their `ray start --block` processes (each one's id is its group's) once all are up. Each has
    free ports of its own, so that several share the machine."""
    logs = [tempfile.NamedTemporaryFile("w", prefix="ray-node-", suffix=".log", delete=False)  # noqa: SIM115
            for _ in range(count)]
    nodes = []
    try:
        for log in logs:
            ports = [f"--{flag}={free_port()}" for flag in (*NODE_PORTS, "node-manager-port", "object-manager-port")]
            nodes.append(subprocess.Popen(
                # tests/ray_join.py: `ray start`, joining a head on 127.0.0.1 under the single-machine switch.
                [sys.executable, "-m", "tests.ray_join", "start", f"--address={head.address}", "--block",
                 "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", "--disable-usage-stats", *ports],
                env=head.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            # One at a time: two raylets registering at once on 2 busy cores time out at the head's GCS.
            wait_for_node(nodes[-1], Path(log.name))
        yield nodes
    finally:
        for node in nodes:
            stop_group(node)
        for log in logs:
            log.close()
            os.unlink(log.name)


def wait_for_node(node: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    """Until `ray start --block` says its node runs (its raylet has registered with the head)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node.poll() is not None:
            raise RuntimeError(f"ray worker node exited with {node.returncode}: {log.read_text()[-2000:]}")
        if "Ray runtime started" in log.read_text():
            return
        time.sleep(0.5)
    raise TimeoutError(f"the Ray worker node did not start within {timeout_s}s: {log.read_text()[-2000:]}")


def stop_group(process: subprocess.Popen, grace_s: float = 3) -> None:
    """End the head and everything it started: its process group, by id, never by name."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def submit(command: list[str], env: dict, timeout_s: float = 1500) -> subprocess.CompletedProcess:
    """`ray job submit`, retried while the head's job agent is still starting (the dashboard answers first)."""
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
        if "No available agent to submit job" not in done.stdout + done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(3)
