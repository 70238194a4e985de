"""A real full disk, cheaply: a tmpfs of a few hundred KB mounted on a folder of the test's own, filled up by a
filler file, so that the next write there fails with ENOSPC from the kernel, as on a full volume. Where mounting is
not permitted (not root, a container without CAP_SYS_ADMIN) the test is skipped with the reason."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = ".filler"


@contextmanager
def tiny_disk(folder: Path, kib: int = 256) -> Iterator[Path]:
    """FOLDER (created) as a tmpfs of KIB KiB for the block's duration; unmounted after, whatever happens."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a filler file into FOLDER's filesystem until no more than LEAVE bytes are free; returns it (remove it
    to free the space)."""
    filler = folder / FILLER
    chunk = b"\0" * 4096
    with open(filler, "ab", buffering=0) as out:  # unbuffered: nothing left to write when it is closed
        try:
            while out.write(chunk):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    if leave:
        with open(filler, "r+b") as out:
            out.truncate(max(0, filler.stat().st_size - leave))
    return filler
