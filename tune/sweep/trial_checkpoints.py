"""An architecture's trial checkpoints, removed once its best configuration is chosen.

A trial's checkpoints are what a resumed search or a retried trial continues from. Once the search has ended and
its best trial is recorded in sweep.json, nothing reads them again: the retrain starts from the best configuration,
not from the trial's weights, and a resume goes straight to the retrain (tune/sweep/orchestration.py `run_model`). What
stays is each trial's results (result.json, progress.csv, params.json, TensorBoard events, the driver's times), which
trials.json and `make dashboard` read. Storage may be a URI (s3://...), so everything goes through pyarrow.fs.
"""

from __future__ import annotations

import re

from pyarrow import fs as pafs

# Tune's and Ray Train's checkpoint folders: checkpoint_000003 (tune/execution, train/_internal/storage.py).
CHECKPOINT_FOLDER = re.compile(r"checkpoint_\d+")


def checkpoint_folders(root: str) -> tuple[pafs.FileSystem, list[str], int]:
    """Every checkpoint_NNNNNN folder under ROOT (a local folder or a URI), outermost only, and their size in bytes.

    A ROOT that does not exist has none."""
    filesystem, path = pafs.FileSystem.from_uri(root)
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return filesystem, [], 0
    folders = sorted(i.path for i in infos
                     if i.type == pafs.FileType.Directory and CHECKPOINT_FOLDER.fullmatch(i.base_name))
    outermost = [f for f in folders if not any(f.startswith(other + "/") for other in folders if other != f)]
    inside = [i for i in infos if i.type == pafs.FileType.File and any(i.path.startswith(f + "/") for f in outermost)]
    return filesystem, outermost, sum(i.size or 0 for i in inside)


def remove_trial_checkpoints(roots: list[str]) -> int:
    """Delete the checkpoint folders under each of ROOTS (a Tune experiment, a trials' Ray Train storage); every
    other file stays. Returns the bytes freed."""
    freed = 0
    for root in roots:
        filesystem, folders, size = checkpoint_folders(root)
        for folder in folders:
            filesystem.delete_dir(folder)
        freed += size
    return freed
