"""Where a sweep lives: `OUTPUT/<sweep-name>/` holds everything of one sweep, `OUTPUT/latest` points to the newest.

A new sweep claims a folder no other sweep has used, so it can never read, reuse or overwrite another sweep's
files; `--resume` and `python -m jobs.report` find a sweep from its own folder or from OUTPUT's `latest`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from jobs.engine.errors import UsageError
from jobs.engine.run.storage import FOLDER_NAME
from jobs.engine.run.storage import check_writable as check_writable  # its callers' import, kept
from jobs.engine.run_result import RESULT_FILE
from tune.sweep.torn_records import why_torn
from tune.sweep.upgrade import read_result

LATEST = "latest"
SWEEP_FILE = "sweep.json"
TRIALS_FILE = "trials.json"
REPORT_FILE = "report.html"
COMPARISON_FILES = {ext: f"comparison.{ext}" for ext in ("csv", "json", "md")}
FINAL = "final"  # FINAL/<model>/seed<k>/result.json: the retrains of a sweep's best configurations
STUDIES = "studies.journal"  # an Optuna study per architecture, live (tune/sweep/study.py), for make dashboard
TUNE_STORAGE = "tune"  # the default storage of Tune's trials, inside the sweep's folder
# A sweep name becomes a folder name (and a Tune experiment name): no separators, no leading dot.
NAME = FOLDER_NAME


def check_name(name: str) -> str:
    if not NAME.match(name) or name == LATEST:
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' or '-' (not {LATEST!r}), at most 100")
    return name


def claim(output: Path, name: str | None, preset: str) -> Path:
    """Create this sweep's own folder under OUTPUT, which no earlier sweep has used.

    Without --name the folder is named after the preset and the start time; two sweeps started within the
    same second get -2, -3, ... rather than sharing a folder. A --name that is taken is an error.
    """
    if name is not None:
        folder = output / check_name(name)
        try:
            folder.mkdir()
        except FileExistsError:
            raise UsageError(f"--name {name}: {folder} already holds a sweep; choose another name, or add "
                             f"--resume {folder} to continue it") from None
        return folder
    stem = f"sweep-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1, 1000):
        folder = output / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise UsageError(f"--output {output}: could not find a free sweep folder name for {stem}")


def point_latest(output: Path, folder: Path) -> None:
    """Make OUTPUT/latest a relative link to FOLDER, replaced atomically so a reader never sees it missing."""
    link = output / LATEST
    temporary = output / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(folder.name, target_is_directory=True)
    os.replace(temporary, link)


def find_sweep(path: Path, what: str) -> Path:
    """A sweep folder (holds sweep.json) or an OUTPUT whose `latest` is one; a UsageError naming WHAT otherwise."""
    path = Path(path).expanduser()
    if (path / SWEEP_FILE).is_file():
        return path.resolve()
    latest = path / LATEST
    if (latest / SWEEP_FILE).is_file():
        return latest.resolve()
    if not path.is_dir():
        raise UsageError(f"{what}: {path} does not exist")
    raise UsageError(f"{what}: no sweep in {path} ({SWEEP_FILE} not found there nor in {LATEST}/); give a sweep "
                     f"folder, or the --output folder of a sweep")


def seed_folder(sweep_folder: Path, model: str, seed: int) -> Path:
    """Where the retrain of MODEL with SEED keeps its result.json and checkpoint/."""
    return Path(sweep_folder) / FINAL / model / f"seed{seed}"


def seed_results(sweep_folder: Path, model: str) -> list[Path]:
    """The whole result.json of each retrained seed of MODEL, in seed order (seed2 before seed10); a torn one
    (`torn_seed_results`) is left out, as a seed not yet retrained."""
    return [path for path in seed_files(sweep_folder, model) if why_torn(path, read_result) is None]


def torn_seed_results(sweep_folder: Path, model: str) -> list[tuple[Path, str]]:
    """Each torn result.json of MODEL's retrains (empty, cut short, not a run result) with why it is torn."""
    return [(path, why) for path in seed_files(sweep_folder, model) if (why := why_torn(path, read_result))]


def seed_files(sweep_folder: Path, model: str) -> list[Path]:
    found = [(int(m.group(1)), p / RESULT_FILE) for p in (Path(sweep_folder) / FINAL / model).glob("seed*")
             if (m := re.fullmatch(r"seed(\d+)", p.name)) and (p / RESULT_FILE).is_file()]
    return [path for _, path in sorted(found)]
