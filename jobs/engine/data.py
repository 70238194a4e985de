"""MNIST from the four original IDX files: read, validate, hold as uint8 tensors.

Everything here runs on the driver before any Ray work, so that a missing or corrupt file is reported as
one `error:` line instead of a failure deep inside a worker.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jobs.engine.errors import UsageError
from models.mnist import SIDE

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
VALIDATION_SIZE = 5_000
SPLIT_SEED = 20_240_601  # fixed: the validation split must not move between runs or trials


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


def find_file(folder: Path, stem: str) -> Path:
    """One IDX file, raw or gzipped, flat or in torchvision's MNIST/raw layout."""
    for sub in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (sub / name).is_file():
                return sub / name
    raise UsageError(f"{folder / stem}: missing (looked for {stem} and {stem}.gz, flat and in MNIST/raw/)")


def read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """Parse one IDX file, checking its magic number and that its size matches its header."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UsageError(f"{path}: cannot be read or decompressed ({exc})") from None
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UsageError(f"{path}: truncated header ({len(raw)} bytes)")
    found = struct.unpack(">I", raw[:4])[0]
    if found != magic:
        raise UsageError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    expected = int(np.prod(shape)) + header
    if len(raw) != expected:
        raise UsageError(f"{path}: {len(raw)} bytes but the header {shape} needs {expected} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_pair(folder: Path, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = find_file(folder, FILES[images_key])
    labels_path = find_file(folder, FILES[labels_key])
    images = read_idx(images_path, IMAGE_MAGIC, 3)
    labels = read_idx(labels_path, LABEL_MAGIC, 1)
    if images.shape[1:] != (SIDE, SIDE):
        raise UsageError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected {SIDE}x{SIDE}")
    if len(images) != len(labels):
        raise UsageError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if len(labels) and labels.max() > 9:
        raise UsageError(f"{labels_path}: label {int(labels.max())} is outside 0-9")
    return images, labels


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


def load_mnist(data_dir: str | None = None, download_root: str = "data") -> Mnist:
    """Read and validate all four files, then split 55,000/5,000 with a fixed seed."""
    folder = resolve_data_dir(data_dir)
    if folder is None:
        try:
            folder = download(Path(download_root).resolve())
        except UsageError as exc:
            raise UsageError(f"{exc}; pass --data-dir or set MNIST_DATA_DIR") from None
    elif not folder.is_dir():
        raise UsageError(f"{folder}: data folder does not exist")
    train_x, train_y = read_pair(folder, "train_images", "train_labels")
    test_x, test_y = read_pair(folder, "test_images", "test_labels")
    return split(torch.from_numpy(train_x.copy()), torch.from_numpy(train_y.astype(np.int64)),
                 torch.from_numpy(test_x.copy()), torch.from_numpy(test_y.astype(np.int64)))


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
