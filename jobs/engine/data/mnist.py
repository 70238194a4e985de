"""MNIST in any common form (jobs.engine.data.formats): read, validate, hold as uint8 tensors; fetch and repair.

Everything here runs on the driver before any Ray work, so that a missing or corrupt file is reported as
one `error:` line instead of a failure deep inside a worker.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jobs.engine.data.formats import (
    FILES,
    IMAGE_MAGIC,
    LABEL_MAGIC,
    Arrays,
    Source,
    find_file,
    idx_candidates,
    locate,
    read_bytes,
    read_idx,
)
from jobs.engine.errors import UsageError
from models.mnist import SIDE

__all__ = ["FILES", "IMAGE_MAGIC", "LABEL_MAGIC", "SIDE", "VALIDATION_SIZE", "Mnist", "download", "find_file",
           "limit", "load_mnist", "read_bytes", "read_idx", "refresh", "resolve_data_dir", "split"]

VALIDATION_SIZE = 5_000
SPLIT_SEED = 20_240_601  # fixed: the validation split must not move between runs or trials
STALE_DOWNLOAD_S = 3_600  # a temporary download folder this old was left by a killed fetch, not a running one


@dataclass
class Mnist:
    """The whole data set as uint8 images [N, 28, 28] and int64 labels [N], split three ways."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def to(self, device: torch.device | str) -> Mnist:
        return Mnist(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_labels), "val": len(self.val_labels), "test": len(self.test_labels)}


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """The folder named by --data-dir or MNIST_DATA_DIR; None means: download with torchvision."""
    chosen = data_dir or os.environ.get("MNIST_DATA_DIR")
    return Path(chosen).expanduser().resolve() if chosen else None


def download(root: Path) -> Path:
    """Fetch MNIST with torchvision when no folder was named; returns the folder holding the IDX files."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch is one user-facing line
        # torchvision's message spans lines (one per mirror tried); an error is one line.
        raise UsageError(f"{root}: MNIST download failed ({' '.join(str(exc).split())})") from None
    return root


def read_folder(folder: Path) -> tuple[Arrays, Arrays]:
    """(train, test) from whichever form of MNIST `folder` holds (mnist_formats.locate's order).

    Raises UsageError: the folder does not exist or is a file, nothing fits (what was found and what was
    expected), or a file at fault (its path and what is wrong).
    """
    if not folder.is_dir():
        raise UsageError(f"{folder}: " + ("is a file, not a data folder" if folder.exists()
                                          else "data folder does not exist"))
    return locate(folder).read()


def load_mnist(data_dir: str | None = None, download_root: str = "data") -> Mnist:
    """Read and validate MNIST, then split its 60,000 training images 55,000/5,000 with a fixed seed.

    `data_dir` (else MNIST_DATA_DIR) names a folder in any form mnist_formats reads; with neither, MNIST is read
    from `download_root`, downloaded there first (by `refresh`) when it is missing or broken. Returns uint8
    images [N, 28, 28] and int64 labels [N] per split. Raises UsageError as read_folder, or when the download fails.
    """
    folder = resolve_data_dir(data_dir)
    if folder is None:
        root = Path(download_root).resolve()
        try:
            train, test = read_folder(root)
        except UsageError:
            try:
                for old, new in refresh(root):
                    print(f"{old}: moved aside as {new.name} (it differs from the MNIST downloaded)", file=sys.stderr)
            except UsageError as exc:
                raise UsageError(f"{exc}; pass --data-dir or set MNIST_DATA_DIR") from None
            train, test = read_folder(root)
    else:
        train, test = read_folder(folder)
    return split(torch.from_numpy(train.images.copy()), torch.from_numpy(train.labels.astype(np.int64)),
                 torch.from_numpy(test.images.copy()), torch.from_numpy(test.labels.astype(np.int64)))


def refresh(folder: Path, fetch: Callable[[Path], Path] | None = None) -> list[tuple[Path, Path]]:
    """Download MNIST beside the files in `folder` and make it what `folder` is read as, keeping what it replaces.

    `fetch(root)` (default: `download`) fills an empty temporary folder inside `folder` (same file system, so
    that a rename is atomic; hidden, so never read) and returns where the files are. Only when that download
    validates does anything in `folder` change: every copy of an IDX file whose content differs from the
    download (truncated, corrupt or other data) is renamed `<name>.broken-<YYYYmmdd-HHMMSS>`, never deleted, and
    each downloaded IDX file is moved into `folder/MNIST/raw/` by one rename, so no reader sees half a file.
    IDX files are read before any other form, so a CSV or .npz beside them is left as it is.

    Returns (old path, new path) for each file moved aside. Raises UsageError: the folder cannot be created or
    written, the download failed (fetch's message) or it does not validate.
    """
    fetch = fetch or download
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".fetch-mnist-*"):
            if time.time() - stale.stat().st_mtime > STALE_DOWNLOAD_S:
                shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-mnist-", dir=folder) as staging:
            source = locate(fetch(Path(staging)))
            try:
                if source.form != "IDX":
                    raise UsageError(f"{staging}: the download holds {source.form}, not the IDX files")
                source.read()
            except UsageError as exc:
                raise UsageError(f"the MNIST downloaded fails its checks: {exc}") from None
            return install(folder, source)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot write the download there ({exc.strerror or exc})") from None


def install(folder: Path, source: Source) -> list[tuple[Path, Path]]:
    """Move validated IDX files (`source`) into `folder/MNIST/raw/`; differing copies go aside first (see refresh).

    Returns (old path, new path) for each file moved aside. Raises OSError when a rename fails.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    copies = idx_candidates(folder)
    moved = []
    for key, new in source.paths.items():
        content = read_bytes(new)
        for old in copies[key]:
            if not _same_content(old, content):
                moved.append((old, _move_aside(old, stamp)))
        os.replace(new, target / new.name)
    return moved


def _same_content(path: Path, content: bytes) -> bool:
    try:
        return read_bytes(path) == content
    except UsageError:
        return False


def _move_aside(path: Path, stamp: str) -> Path:
    aside, n = path.with_name(f"{path.name}.broken-{stamp}"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.broken-{stamp}-{n}")
    path.rename(aside)
    return aside


def split(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> Mnist:
    # Small synthetic sets in tests keep the same 1/12 proportion as 5,000 of 60,000.
    val_size = min(VALIDATION_SIZE, len(train_y) // 12)
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val, train = order[:val_size], order[val_size:]
    return Mnist(train_x[train], train_y[train], train_x[val], train_y[val], test_x, test_y)


def limit(data: Mnist, train: int = 0, val: int = 0, test: int = 0) -> Mnist:
    """Take the first N of each split (0 keeps all): the smoke and quick presets train on a subset."""
    def head(t: torch.Tensor, n: int) -> torch.Tensor:
        return t[:n] if n else t

    return Mnist(head(data.train_images, train), head(data.train_labels, train),
                 head(data.val_images, val), head(data.val_labels, val),
                 head(data.test_images, test), head(data.test_labels, test))
