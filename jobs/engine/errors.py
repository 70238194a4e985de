"""Errors a user can fix, and the one place that turns them into one `error: ...` line: exit code 2 for bad input,
1 for a run that failed for a reason worth one line (a divergence), never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class UsageError(ValueError):
    """Bad input (data, flags, config): reported as one line, never as a traceback."""


class Diverged(FloatingPointError):
    """A run whose training loss became NaN or infinite: the same config would diverge again, so it is not
    retried; reported as one `error:` line naming the epoch and what to try, exit code 1."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag like every other user error: one line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a command-line entry point; user errors become one stderr line and exit code 2."""
    try:
        code = main()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Diverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
