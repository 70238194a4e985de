"""A full disk (or a used-up quota), wherever it shows: an OSError in this process, or the text of an error raised
in a Ray worker (a trial's checkpoint, a retrain's files), which reaches the driver as a string in a traceback.

It is the user's to fix, like an --output that cannot be written (checked before Ray starts, exit code 2), only
found later: `DiskFull` is a UsageError, so the command ends with one `error:` line and exit code 2. Nothing
computed is lost, since every record is written whole, and a `--resume` after space is freed continues.
"""

from __future__ import annotations

import errno
import os

from jobs.engine.errors import UsageError

ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# As the C library words them ("No space left on device", "Disk quota exceeded"): how a remote traceback says it.
MESSAGES = tuple(os.strerror(number) for number in ERRNOS)


class DiskFull(UsageError):
    """The disk (or quota) where the sweep writes is full: one line naming the folder and what is kept."""


def disk_full(error: BaseException | str | None) -> bool:
    """True when ERROR, any exception it was raised from, or its text (a Ray trial's error string) is ENOSPC or
    EDQUOT."""
    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in ERRNOS:
            return True
        if any(message in str(error) for message in MESSAGES):
            return True
        error = error.__cause__ or error.__context__ or getattr(error, "cause", None)
    return isinstance(error, str) and any(message in error for message in MESSAGES)
