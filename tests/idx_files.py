"""Small, valid MNIST written by tests in every form the reader takes, so that corruption can be made on purpose."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from jobs.engine.data.mnist import FILES, IMAGE_MAGIC, LABEL_MAGIC

Split = tuple[np.ndarray, np.ndarray]  # images uint8 [N, 28, 28], labels uint8 [N]


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def mnist_arrays(n_train: int = 120, n_test: int = 40, seed: int = 0) -> dict[str, Split]:
    """{"train": (images, labels), "test": ...}, each digit drawn as a bright bar at a label-dependent place."""
    rng = np.random.default_rng(seed)
    splits = {}
    for prefix, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + 2 * label:8 + 2 * label, 4:24] = 255
        splits[prefix] = (images, labels)
    return splits


def idx_contents(splits: dict[str, Split]) -> dict[str, bytes]:
    """The uncompressed content of each of the four IDX files, keyed as FILES."""
    return {f"{prefix}_{kind}": idx_bytes(array, magic)
            for prefix, (images, labels) in splits.items()
            for kind, array, magic in (("images", images, IMAGE_MAGIC), ("labels", labels, LABEL_MAGIC))}


def write_mnist(folder: Path, n_train: int = 120, n_test: int = 40, gz: bool = True, seed: int = 0) -> Path:
    """The four IDX files under their original names, gzipped (`.gz`) or raw."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in idx_contents(mnist_arrays(n_train, n_test, seed)).items():
        (folder / (FILES[key] + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return folder


def write_csv(path: Path, split: Split, header: bool = False, gz: bool = False, newline: str = "\n",
              trailer: str = "") -> Path:
    """One split as CSV: a label then 784 pixels per row; `header` adds Kaggle's `label,pixel0,...` row."""
    images, labels = split
    rows = [",".join(map(str, [int(label), *image.reshape(-1).tolist()])) for image, label in zip(images, labels,
                                                                                                  strict=True)]
    if header:
        rows.insert(0, ",".join(["label", *(f"pixel{i}" for i in range(784))]))
    data = (newline.join(rows) + newline + trailer).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_npz(path: Path, splits: dict[str, Split], keys: tuple[str, ...] = ("x_train", "y_train", "x_test",
                                                                            "y_test")) -> Path:
    """Keras's mnist.npz layout (or the arrays under other `keys`, in that order)."""
    arrays = [splits["train"][0], splits["train"][1], splits["test"][0], splits["test"][1]]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **dict(zip(keys, arrays, strict=True)))
    return path
