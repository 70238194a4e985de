"""A real Ray head on 127.0.0.1 that a test owns: started in its own process group, stopped by its id."""

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

RAY = str(Path(sys.executable).parent / "ray")  # the CLI of the venv that runs the tests


class RayHead(NamedTuple):
    url: str  # the dashboard: `ray job submit --address URL`
    env: dict[str, str]  # the environment of a client of this head: it carries the token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_dashboard(url: str, token: str, head: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray head exited with {head.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"Ray dashboard at {url} did not answer within {timeout_s}s")


@contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[RayHead]:
    """A head of its own for the block; the session's shared one is conftest's `ray_head_cluster`."""
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    gcs_port, dashboard_port = free_port(), free_port()
    # Every fixed default port gets a free one: the session's embedded Ray already holds the agent's 52365, and a
    # dashboard agent that cannot bind takes its raylet down, which leaves the head with no job agent at all.
    agent_ports = [f"--{flag}={free_port()}" for flag in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port",
        "ray-client-server-port")]
    # Ray's socket paths must stay short, so the temp dir lives directly under /tmp.
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    log = open(Path(temp_dir) / "head.log", "w")  # noqa: SIM115 - closed below
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={gcs_port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--num-cpus={num_cpus}", "--disable-usage-stats", f"--temp-dir={temp_dir}", *agent_ports],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_dashboard(url, token, head)
        yield RayHead(url, env)
    finally:
        stop_group(head)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


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
