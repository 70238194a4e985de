"""Small, valid MNIST-format IDX files written by tests, so that corruption can be made on purpose."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from jobs.engine.data import FILES, IMAGE_MAGIC, LABEL_MAGIC


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 120, n_test: int = 40, gz: bool = True, seed: int = 0) -> Path:
    """Four IDX files whose digit is drawn as a bright square at a label-dependent place."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + 2 * label:8 + 2 * label, 4:24] = 255
        for key, array, magic in ((f"{prefix}_images", images, IMAGE_MAGIC), (f"{prefix}_labels", labels, LABEL_MAGIC)):
            data = idx_bytes(array, magic)
            name = FILES[key] + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder
