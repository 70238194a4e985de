"""Records written whole or not at all: a temporary file beside the record, flushed to disk, then renamed over it.

A process killed mid-write, or a disk that fills mid-write, leaves the previous record (or none), never half of
a new one that a resume would trust. `os.replace` is atomic within one filesystem (POSIX rename(2)), which is why
the temporary file lives in the record's own folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

# A value as json.loads gives it and write_atomically writes it: what a record is before it is typed.
JsonValue: TypeAlias = "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside PATH for a writer that makes the file itself (np.savez, torch.onnx.export);
    on success it is synced and renamed to PATH, on any error removed and PATH left as it was. Raises what the
    writer raised (OSError with errno ENOSPC on a full disk)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, content: bytes) -> None:
    """PATH holds CONTENT, or what it held before if writing fails."""
    with replacing(path) as temporary:
        temporary.write_bytes(content)


def write_text_atomically(path: Path, text: str, encoding: str = "utf-8") -> None:
    write_bytes_atomically(path, text.encode(encoding))


def write_atomically(path: Path, content: Any) -> None:
    """CONTENT as indented JSON (values JSON cannot hold written with str())."""
    write_text_atomically(path, json.dumps(content, indent=1, default=str))
