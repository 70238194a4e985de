"""`make dashboard`: TensorBoard on every sweep and run under OUTPUT, each once.

`tensorboard --logdir OUTPUT` walks OUTPUT/latest (a link to the newest sweep) as well as the sweep's own folder,
so every trial of that sweep showed twice. Instead each folder under OUTPUT is given by name (`--logdir_spec
NAME:PATH,...`), links left out. TensorBoard reads that list once: a sweep started after it needs a restart of
the dashboard (new trials of a listed sweep appear as they are written).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jobs.engine.errors import ArgumentParser, UsageError, run_cli


def logdir_spec(output: Path) -> str:
    """`NAME:PATH,...` for each real folder directly under OUTPUT (never a link such as `latest`, nor a hidden
    folder), sorted by name; UsageError where OUTPUT holds none, or a path TensorBoard's list cannot carry."""
    output = Path(output).expanduser()
    if not output.is_dir():
        raise UsageError(f"{output}: no such folder; run a sweep first (make sweep), or give OUTPUT=<its --output>")
    folders = sorted(child for child in output.iterdir()
                     if child.is_dir() and not child.is_symlink() and not child.name.startswith("."))
    if not folders:
        raise UsageError(f"{output}: no sweep or run folder in it yet; run a sweep first (make sweep)")
    for folder in folders:
        # TensorBoard splits the list at commas and a name from its path at the first colon.
        if "," in str(folder.resolve()) or ":" in folder.name:
            raise UsageError(f"{folder}: TensorBoard's --logdir_spec cannot carry a ',' in a path or a ':' in a "
                             "name; rename it, or run tensorboard --logdir on it")
    return ",".join(f"{folder.name}:{folder.resolve()}" for folder in folders)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m jobs.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="results", help="the sweeps' --output (default: results)")
    parser.add_argument("--port", type=int, default=6006)
    args = parser.parse_args(argv)
    spec = logdir_spec(Path(args.output))
    # The venv's TensorBoard, the one requirements.txt pins; this process becomes it (Ctrl-C stops it).
    tensorboard = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or "tensorboard"
    os.execvp(tensorboard, [tensorboard, "--logdir_spec", spec, "--host", "127.0.0.1", "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    run_cli(main)
