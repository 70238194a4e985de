"""Running the command-line entry points as a user would: in a subprocess (`run_module`), or in this process with the
same error handling (`run_in_process`), the cheap form for everything but the `python -m` path itself."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.paths import REPO


def run_module(module: str, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def run_in_process(main, args: list[str], capsys) -> subprocess.CompletedProcess:
    """The same entry point and error handling as the command line, without a new interpreter per case."""
    from jobs.engine.errors import run_cli

    try:
        run_cli(lambda: main(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2 and exactly one stderr line, starting `error:`, with no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
