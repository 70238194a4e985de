"""`make dashboard` on a sweep that is still running: both servers answer on 127.0.0.1, optuna-dashboard's API lists
the running search's trials, and headless Chromium renders its page (tests/test_sweep_faults.py calls it)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.paths import REPO

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str, deadline: float) -> bytes:
    """URL's body once it answers; AssertionError at DEADLINE (time.monotonic())."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - our own server on 127.0.0.1
                return answer.read()
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer: {exc}") from None
            time.sleep(0.5)


def check_live_dashboard(output: Path, chromium: str, model: str, at_least: int, profile: Path) -> None:
    """Start `python -m jobs.dashboard OUTPUT` as the user would; MODEL's study lists AT_LEAST trials through the
    API and its name is on the page Chromium renders; then end the dashboard's process group."""
    board, studies = free_port(), free_port()
    # No proxy for our own servers: the sweep's tests run behind a dead one.
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    process = subprocess.Popen([sys.executable, "-m", "jobs.dashboard", str(output), "--port", str(board),
                                "--optuna-port", str(studies)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        listed = json.loads(fetch(f"http://127.0.0.1:{studies}/api/studies", deadline))["study_summaries"]
        study = next((s for s in listed if s["study_name"] == model), None)
        assert study is not None, listed
        detail = json.loads(fetch(f"http://127.0.0.1:{studies}/api/studies/{study['study_id']}", deadline))
        assert len(detail["trials"]) >= at_least, detail["trials"]
        assert all(t["params"] for t in detail["trials"]), detail["trials"]  # each with its sampled configuration
        assert b"TensorBoard" in fetch(f"http://127.0.0.1:{board}/", deadline)
        page = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                               "--dump-dom", f"http://127.0.0.1:{studies}/dashboard"],
                              capture_output=True, text=True, timeout=120, check=False, env=env)
        assert model in page.stdout, page.stdout[-2000:] + page.stderr[-2000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        said = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{board}/" in said and f"http://127.0.0.1:{studies}/" in said, said
