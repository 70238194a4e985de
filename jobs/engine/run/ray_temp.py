"""A temp dir for an embedded Ray whose socket paths fit, whatever TMPDIR is.

Ray keeps its Unix sockets under TEMP/session_<date>_<pid>/sockets/ and refuses a path over 107 bytes
(ray._private.utils.validate_socket_filepath, the size of sockaddr_un.sun_path less its NUL). TEMP is
$RAY_TMPDIR/ray, else $TMPDIR/ray, else /tmp/ray (ray._common.utils.get_default_ray_temp_dir), so a SLURM job's
TMPDIR of 54 characters left no room: ray.init ended in a traceback. A temp dir too long gets a short one of
this user's under /tmp instead; a TMPDIR that does not exist or cannot be written is one error line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jobs.engine.errors import UsageError

SOCKET_PATH_MAX = 107  # bytes; Linux's sun_path is 108 including the NUL (macOS: 104, Ray checks 103 there)
# What Ray puts under its temp dir before a socket's name, at its longest: "/session_" + "%Y-%m-%d_%H-%M-%S_%f"
# (26) + "_" + a pid of up to 7 digits (Linux's pid_max is at most 4194304) + "/sockets/".
SESSION_SOCKETS = len("/session_") + 26 + 1 + 7 + len("/sockets/")
# The longest socket name Ray 2.60 makes there is the dashboard's "dash_TaskEventsHead" (19), then
# "plasma_store.N"; 24 leaves room for a module or a counter Ray may add.
SOCKET_NAME_MAX = 24
TEMP_DIR_MAX = SOCKET_PATH_MAX - SESSION_SOCKETS - SOCKET_NAME_MAX  # 31 characters
SHORT_ROOT = Path("/tmp")


def default_ray_temp_dir(environ: dict[str, str] | None = None) -> tuple[Path, str | None]:
    """Where Ray would put an embedded cluster's files, and the variable that chose it (None: the /tmp default)."""
    environ = os.environ if environ is None else environ
    for name in ("RAY_TMPDIR", "TMPDIR"):
        if environ.get(name):
            return Path(environ[name]) / "ray", name
    return SHORT_ROOT / "ray", None


def longest_socket_path(temp_dir: Path) -> int:
    """Bytes of the longest socket path Ray makes under TEMP_DIR (see SESSION_SOCKETS and SOCKET_NAME_MAX)."""
    return len(str(temp_dir).encode()) + SESSION_SOCKETS + SOCKET_NAME_MAX


def embedded_temp_dir(environ: dict[str, str] | None = None, short_root: Path = SHORT_ROOT) -> str | None:
    """The `_temp_dir` for ray.init of an embedded cluster: None where Ray's default serves, else a short folder
    of this user's under SHORT_ROOT: where the default makes socket paths too long, or is another user's
    /tmp/ray that this one cannot write. Raises UsageError, before Ray starts, for a RAY_TMPDIR or TMPDIR that
    does not exist or cannot be written, or where no short folder can be made."""
    temp_dir, variable = default_ray_temp_dir(environ)
    if variable is not None:
        if not temp_dir.parent.is_dir():
            raise UsageError(f"{variable}={temp_dir.parent}: no such folder; Ray keeps its files there (create it, "
                             f"or unset {variable})")
        if (error := write_error(temp_dir.parent)) is not None:
            raise UsageError(f"{variable}={temp_dir.parent}: cannot write there ({error}); Ray keeps its files "
                             f"there (point {variable} at a folder you can write)")
    too_long = longest_socket_path(temp_dir) > SOCKET_PATH_MAX
    # Ray creates TEMP where it is missing; one that is there must be a folder this user can write.
    usable = not temp_dir.exists() or (temp_dir.is_dir() and write_error(temp_dir) is None)
    if not too_long and usable:
        return None
    short = short_root / f"ray-{os.getuid()}"
    try:
        short.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        error = exc.strerror or str(exc)
    else:
        error = write_error(short)
    if error is None:
        return str(short)
    why = (f"too long for Ray's socket paths (at most {TEMP_DIR_MAX} characters)" if too_long
           else "not a folder this user can write")
    raise UsageError(f"Ray's temp dir {temp_dir}: {why}, and {short} cannot be used instead ({error}); set "
                     f"RAY_TMPDIR to a short folder you can write")


def write_error(folder: Path) -> str | None:
    """Why a file cannot be created in FOLDER, None when it can (tried, not os.access: root passes that)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".archsweep-write-check-"):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)
