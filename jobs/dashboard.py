"""`make dashboard`: TensorBoard on every sweep and run under OUTPUT, each once, and optuna-dashboard on the newest.

`tensorboard --logdir OUTPUT` walks OUTPUT/latest (a link to the newest sweep) as well as the sweep's own folder,
so every trial of that sweep showed twice. Instead each folder under OUTPUT is given by name (`--logdir_spec
NAME:PATH,...`), links left out. TensorBoard reads that list once: a sweep started after it needs a restart of
the dashboard (new trials of a listed sweep appear as they are written).

Beside it, optuna-dashboard on the newest sweep's studies (OUTPUT/latest/studies.journal, tune/sweep/study.py):
each architecture's search as it runs, its trials' checks, the importance of each hyperparameter. It reads the
journal with the same NFS-safe lock the sweep writes it with, which its own command line would not use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from jobs.engine.errors import ArgumentParser, UsageError, run_cli
from tune.sweep.folder import LATEST, STUDIES


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


def newest_studies(output: Path) -> Path | None:
    """The newest sweep's journal of Optuna studies (OUTPUT/latest/studies.journal); None before a sweep wrote
    one (an older sweep's folder, or a run of jobs.train)."""
    path = Path(output).expanduser() / LATEST / STUDIES
    return path.resolve() if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m jobs.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="results", help="the sweeps' --output (default: results)")
    parser.add_argument("--port", type=int, default=6006, help="TensorBoard's port (default: 6006)")
    parser.add_argument("--optuna-port", type=int, default=8080, help="optuna-dashboard's port (default: 8080)")
    args = parser.parse_args(argv)
    spec = logdir_spec(Path(args.output))
    studies = newest_studies(Path(args.output))
    # The venv's TensorBoard, the one requirements.txt pins, as a child this process ends with itself.
    tensorboard = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or "tensorboard"
    board = subprocess.Popen([tensorboard, "--logdir_spec", spec, "--host", "127.0.0.1", "--port", str(args.port)])
    print(f"TensorBoard (every sweep's trials, HParams): http://127.0.0.1:{args.port}/", flush=True)
    try:
        if studies is None:
            print(f"optuna-dashboard: {Path(args.output) / LATEST} has no {STUDIES} yet (a sweep of this version "
                  "writes one as it searches)", flush=True)
            return board.wait()
        print(f"optuna-dashboard (the newest sweep's searches, {studies}): http://127.0.0.1:{args.optuna_port}/",
              flush=True)
        serve_studies(studies, args.optuna_port)
        return 0
    finally:
        board.terminate()
        board.wait()


def serve_studies(path: Path, port: int) -> None:
    """optuna-dashboard on the journal at PATH, on 127.0.0.1:PORT, until it is stopped (Ctrl-C)."""
    import optuna_dashboard

    from tune.sweep.study import journal

    optuna_dashboard.run_server(journal(path), host="127.0.0.1", port=port)


if __name__ == "__main__":
    run_cli(main)
