"""A real S3-compatible server on 127.0.0.1: moto's (`python -m moto.server`, requirements-dev.txt), a child process
in a process group of its own on a free port, ended by its id (tests/ray_head.py `stop_group`).

It takes any access key and secret; requests without one are refused, as S3 refuses them.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from pyarrow import fs as pafs

from tests.ray_head import free_port, stop_group, wait_until_answers

KEYS = {"AWS_ACCESS_KEY_ID": "archsweep-test", "AWS_SECRET_ACCESS_KEY": "archsweep-test-secret"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    def env(self) -> dict[str, str]:
        """What a user of this server sets: its endpoint and credentials (README, "Where results go")."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **KEYS}

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, access_key=KEYS["AWS_ACCESS_KEY_ID"],
                                 secret_key=KEYS["AWS_SECRET_ACCESS_KEY"], allow_bucket_creation=True)

    def create_bucket(self, name: str) -> str:
        self.filesystem().create_dir(name)
        return name

    def files(self, prefix: str) -> list[str]:
        """Every object's key under PREFIX (bucket/path), relative to it."""
        infos = self.filesystem().get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
        return sorted(i.path[len(prefix) + 1:] for i in infos if i.type == pafs.FileType.File)


@functools.cache
def session_s3_server(config: pytest.Config) -> S3Server:
    """One server for the whole test session (each pytest-xdist worker's), started by the first test module that
    asks for it, ended when the session ends."""
    manager = s3_server()
    server = manager.__enter__()
    config.add_cleanup(lambda: manager.__exit__(None, None, None))
    return server


@contextmanager
def s3_server(timeout_s: float = 60) -> Iterator[S3Server]:
    port = free_port()
    # Its log (a line per request) goes to a file: a pipe nobody reads would fill and stop the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=log, start_new_session=True)
        endpoint = f"http://127.0.0.1:{port}"

        def tail() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            wait_until_answers(f"{endpoint}/moto-api/", process, "moto's S3 server", tail, timeout_s, every_s=0.2)
            yield S3Server(endpoint)
        finally:
            stop_group(process)
