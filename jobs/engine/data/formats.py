"""The forms MNIST is distributed in: find one in a folder, read it, validate it as strictly as the original files.

A folder may hold more than one form; the first form found complete is read, in this order:

1. IDX, the four original files (`FILES`): raw or gzipped, told apart by content (gzip's magic bytes 1f 8b),
   never by the name; named with dashes or with Kaggle's dot (`train-images.idx3-ubyte`), in any case, with or
   without `.gz`; flat, in torchvision's `MNIST/raw/`, or in folders of their own (Kaggle's
   `train-images-idx3-ubyte/train-images-idx3-ubyte`), at most MAX_DEPTH folders down. The shallowest copy of
   each file is read, and a broken copy is an error, not a reason to read another one.
2. NPZ: Keras's `mnist.npz` (arrays x_train, y_train, x_test, y_test); `mnist.npz` first, then any `*.npz`.
3. CSV: a train file and a test file (`mnist_train.csv`/`mnist_test.csv`, `train.csv`/`test.csv`, else any
   name with `train`, or `test`/`t10k`, names with `mnist` first; Colab's `mnist_train_small.csv` is one),
   raw or gzipped; each row a label then 784 pixel values, with or without a header row.

"First complete" means a half-copied set of IDX files beside a complete CSV pair does not hide the CSV. Hidden
files and folders (names starting with `.`: macOS's `._*` twins, fetch_mnist's temporary download) and
`__MACOSX/` are never read. Every form ends as uint8 images [N, 28, 28] (pixels 0-255) and uint8 labels [N]
(0-9) with N >= 1 per split, or as one `UsageError` line naming the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.engine.errors import UsageError
from models.mnist import SIDE

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
PIXELS = SIDE * SIDE
GZIP_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
FORMS = ("IDX", "NPZ", "CSV")  # the order of preference, which locate follows
# MNIST/raw/ and Kaggle's archive/<name>/<name> are 2 down; deeper, or more entries, is a scan of a whole volume
# (a home directory named by mistake), which should end quickly in "no MNIST here".
MAX_DEPTH = 3
MAX_ENTRIES = 20_000
SKIPPED_FOLDERS = {"__MACOSX"}
CSV_CHUNK = 10_000  # rows parsed at once: 60,000 rows x 785 values at once would be 190 MB of int32
LABEL_COLUMNS = ("label", "labels", "class", "digit", "target", "y")
EXPECTED = ("expected the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; raw or .gz), mnist.npz (x_train, y_train, x_test, "
            "y_test), or mnist_train.csv with mnist_test.csv (a label, then 784 pixels per row)")
_STEM_KEYS = {stem: key for key, stem in FILES.items()}


@dataclass(frozen=True)
class Arrays:
    """One validated split: images uint8 [N, 28, 28] (pixels 0-255) and labels uint8 [N] (0-9), N >= 1."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Source:
    """One form of MNIST found in a folder: `form` is one of FORMS; `paths` maps each file's role to it.

    Roles: FILES' keys for IDX, "npz" for NPZ, "train_csv" and "test_csv" for CSV.
    """

    form: str
    paths: dict[str, Path]

    def read(self) -> tuple[Arrays, Arrays]:
        """(train, test), read and validated. Raises UsageError naming the file and what is wrong."""
        return _READERS[self.form](self.paths)


# --- finding files -------------------------------------------------------------------------------------------


def scan(folder: Path) -> list[tuple[int, Path]]:
    """Every file below `folder` as (depth, path), depth 0 being in `folder`: shallowest first, then by name.

    Hidden names and `__MACOSX/` are skipped; the walk stops MAX_DEPTH folders down and after MAX_ENTRIES
    entries. Raises UsageError when `folder` itself cannot be listed.
    """
    found: list[tuple[int, Path]] = []
    budget = MAX_ENTRIES
    level = [folder]
    for depth in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for current in level:
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except OSError as exc:
                if current == folder:
                    raise UsageError(f"{folder}: cannot be listed ({exc.strerror or exc})") from None
                continue  # an unreadable subfolder cannot hold the files we read
            for entry in entries:
                budget -= 1
                if budget < 0:
                    return found
                if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
                    continue
                try:
                    if entry.is_dir():
                        below.append(Path(entry.path))
                    elif entry.is_file():
                        found.append((depth, Path(entry.path)))
                except OSError:
                    continue  # a dangling link or a file gone while we looked
        level = below
    return found


def idx_stem(name: str) -> str | None:
    """The original IDX name a file name stands for (`TRAIN-IMAGES.IDX3-UBYTE.GZ` -> `train-images-idx3-ubyte`)."""
    normal = re.sub(r"[._ ]", "-", name.lower().removesuffix(".gz"))
    return normal if normal in _STEM_KEYS else None


def _idx_ranked(files: list[tuple[int, Path]]) -> dict[str, list[Path]]:
    ranked: dict[str, list[tuple[int, int, str, Path]]] = {key: [] for key in FILES}
    for depth, path in files:
        stem = idx_stem(path.name)
        if stem:
            # The original spelling before Kaggle's: raw, then .gz, then any other; shallowest first overall.
            rank = {stem: 0, stem + ".gz": 1}.get(path.name, 2)
            ranked[_STEM_KEYS[stem]].append((depth, rank, str(path), path))
    return {key: [entry[-1] for entry in sorted(entries)] for key, entries in ranked.items()}


def idx_candidates(folder: Path) -> dict[str, list[Path]]:
    """Every copy of each IDX file below `folder`, keyed as FILES, the copy that is read first.

    Raises UsageError when `folder` cannot be listed.
    """
    return _idx_ranked(scan(folder))


def find_file(folder: Path, stem: str) -> Path:
    """The copy of one IDX file (`stem`, one of FILES' values) that is read: any spelling, raw or gzipped.

    Raises UsageError `<folder>/<stem>: missing (...)` when there is none.
    """
    copies = idx_candidates(folder)[_STEM_KEYS[stem]]
    if not copies:
        raise UsageError(_missing(folder, stem, scan(folder)))
    return copies[0]


def _csv_role(name: str) -> str | None:
    lower = name.lower().removesuffix(".gz")
    if not lower.endswith(".csv"):
        return None
    stem = lower.removesuffix(".csv")
    is_test, is_train = "test" in stem or "t10k" in stem, "train" in stem
    if is_test == is_train:
        return None  # neither, or both ("train_test.csv"): not a split of its own
    return "test_csv" if is_test else "train_csv"


def _named_rank(path: Path, exact: set[str]) -> int:
    stem = path.name.lower().removesuffix(".gz").rsplit(".", 1)[0].replace("-", "_")
    return 0 if stem in exact else 1 if "mnist" in stem else 2


def locate(folder: Path) -> Source:
    """The form of MNIST in `folder` that is read: the first complete one in FORMS' order, and its files.

    Raises UsageError: `<folder>/<stem>: missing` when some IDX files are there but not all (and no other form is
    complete), a CSV split without its other half, or, when nothing fits, a few of the names found and what was
    expected.
    """
    files = scan(folder)
    idx = _idx_ranked(files)
    if all(idx.values()):
        return Source("IDX", {key: copies[0] for key, copies in idx.items()})
    # Free-form names: the best name wins before the shallowest (Colab's sample_data has housing CSVs beside).
    npz = sorted((_named_rank(p, {"mnist"}), d, str(p), p) for d, p in files if p.name.lower().endswith(".npz"))
    if npz:
        return Source("NPZ", {"npz": npz[0][-1]})
    csv: dict[str, list[tuple[int, int, str, Path]]] = {"train_csv": [], "test_csv": []}
    for depth, path in files:
        role = _csv_role(path.name)
        if role:
            csv[role].append((_named_rank(path, {"mnist_train", "mnist_test", "train", "test"}), depth, str(path),
                              path))
    if csv["train_csv"] and csv["test_csv"]:
        return Source("CSV", {role: sorted(entries)[0][-1] for role, entries in csv.items()})
    if any(idx.values()):
        stem = next(FILES[key] for key, copies in idx.items() if not copies)
        raise UsageError(_missing(folder, stem, files))
    if csv["train_csv"] or csv["test_csv"]:
        have, lacking = ("train", "test") if csv["train_csv"] else ("test", "train")
        one = sorted(csv[f"{have}_csv"])[0][-1]
        raise UsageError(f"{folder}: {one.name} has no {lacking} CSV beside it (found {_found(folder, files)}; "
                         f"expected a file such as mnist_{lacking}.csv or {lacking}.csv)")
    raise UsageError(f"{folder}: no MNIST here (found {_found(folder, files)}); {EXPECTED}")


def _missing(folder: Path, stem: str, files: list[tuple[int, Path]]) -> str:
    dotted = stem.replace("-idx", ".idx")
    return (f"{folder / stem}: missing (looked for {stem}, {stem}.gz and Kaggle's {dotted}, in any case, flat and "
            f"in folders below such as MNIST/raw/; found {_found(folder, files)})")


def _found(folder: Path, files: list[tuple[int, Path]], shown: int = 6) -> str:
    names = [path.relative_to(folder).as_posix() for _, path in files]
    if not names:
        try:
            names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(folder))
        except OSError:
            names = []
        if not names:
            return "nothing: the folder is empty"
        names[0] = "no files, only " + names[0]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


# --- reading bytes and IDX -----------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """A file's content, gunzipped when it starts with gzip's magic bytes 1f 8b, whatever its name says.

    Raises UsageError `<path>: cannot be read or decompressed (...)`.
    """
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UsageError(f"{path}: cannot be read or decompressed ({exc})") from None


def read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """One IDX file as uint8 [d1, ..., d<dims>], raw or gzipped by content.

    Checks the magic number (IMAGE_MAGIC: 3 dims, LABEL_MAGIC: 1) and that the size matches the header. Raises
    UsageError: cannot be read or decompressed, truncated header, bad magic number, or truncated or corrupt.
    """
    raw = read_bytes(path)
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UsageError(f"{path}: truncated header ({len(raw)} bytes)")
    found = struct.unpack(">I", raw[:4])[0]
    if found != magic:
        kind = {IMAGE_MAGIC: "; it is an image file", LABEL_MAGIC: "; it is a label file"}.get(found, "")
        raise UsageError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x}{kind}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    expected = int(np.prod(shape)) + header
    if len(raw) != expected:
        raise UsageError(f"{path}: {len(raw)} bytes but the header {shape} needs {expected} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


# --- validation shared by every form -------------------------------------------------------------------------


def _whole(values: np.ndarray, where: str, what: str) -> np.ndarray:
    if values.dtype.kind not in "uif":
        raise UsageError(f"{where}: {what} of type {values.dtype}, expected whole numbers")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            scaled = " (scaled to 0-1? expected 0-255)" if what == "pixels" and np.nanmax(values) <= 1 else ""
            raise UsageError(f"{where}: {what} hold {values[bad].flat[0]}, not a whole number{scaled}")
    return values


def as_images(values: np.ndarray, where: str) -> np.ndarray:
    """Images as uint8 [N, 28, 28] from [N, 28, 28], [N, 28, 28, 1], [N, 1, 28, 28] or [N, 784].

    `where` names the source in messages. Raises UsageError: another shape, not 28x28, no images, values that are
    not whole numbers, or a pixel outside 0-255.
    """
    shape = values.shape
    if values.ndim == 2 and shape[1] == PIXELS:
        values = values.reshape(-1, SIDE, SIDE)
    elif values.ndim == 4 and 1 in (shape[1], shape[3]):
        values = values[:, 0] if shape[1] == 1 else values[..., 0]
    if values.ndim != 3:
        raise UsageError(f"{where}: images of shape {list(shape)}, expected [N, {SIDE}, {SIDE}]")
    if values.shape[1:] != (SIDE, SIDE):
        raise UsageError(f"{where}: images are {values.shape[1]}x{values.shape[2]}, expected {SIDE}x{SIDE}")
    if not len(values):
        raise UsageError(f"{where}: holds no images")
    if values.dtype != np.uint8:
        _whole(values, where, "pixels")
        low, high = values.min(), values.max()
        if low < 0 or high > 255:
            raise UsageError(f"{where}: pixel value {high if high > 255 else low} is outside 0-255")
        values = values.astype(np.uint8)
    return values


def as_labels(values: np.ndarray, where: str) -> np.ndarray:
    """Labels as uint8 [N] from [N] or [N, 1] (not one-hot). Raises UsageError: another shape, or outside 0-9."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise UsageError(f"{where}: labels of shape {list(values.shape)}, expected [N] (one digit per image)")
    _whole(values, where, "labels")
    if len(values):
        low, high = values.min(), values.max()
        if low < 0 or high > 9:
            raise UsageError(f"{where}: label {int(high if high > 9 else low)} is outside 0-9")
    return values.astype(np.uint8)


def check_split(images: np.ndarray, labels: np.ndarray, images_where: str, labels_where: str) -> Arrays:
    """One split validated by as_images and as_labels, with as many labels as images. Raises UsageError."""
    images = as_images(images, images_where)
    labels = as_labels(labels, labels_where)
    if len(labels) != len(images):
        raise UsageError(f"{labels_where}: {len(labels)} labels for {len(images)} images in {Path(images_where).name}")
    return Arrays(np.ascontiguousarray(images), labels)


# --- the three forms ----------------------------------------------------------------------------------------


def read_idx_form(paths: dict[str, Path]) -> tuple[Arrays, Arrays]:
    """(train, test) from the four IDX files keyed as FILES. Raises UsageError naming the file at fault."""
    splits = []
    for prefix in ("train", "test"):
        images_path, labels_path = paths[f"{prefix}_images"], paths[f"{prefix}_labels"]
        images = read_idx(images_path, IMAGE_MAGIC, 3)
        labels = read_idx(labels_path, LABEL_MAGIC, 1)
        splits.append(check_split(images, labels, str(images_path), str(labels_path)))
    return splits[0], splits[1]


def read_npz_form(paths: dict[str, Path]) -> tuple[Arrays, Arrays]:
    """(train, test) from an .npz with x_train, y_train, x_test, y_test (any case; Keras's mnist.npz).

    Raises UsageError: not an .npz (zip) archive, unreadable, other array names (listed), or a bad array.
    """
    path = paths["npz"]
    data = read_bytes(path)
    if data[:4] != ZIP_MAGIC:
        raise UsageError(f"{path}: not an .npz archive (it does not start as a zip file does)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            names = {name.lower(): name for name in archive.files}
            if not all(key in names for key in NPZ_KEYS):
                raise UsageError(f"{path}: holds arrays {', '.join(archive.files) or 'none'}; expected "
                                 f"{', '.join(NPZ_KEYS)} (as Keras's mnist.npz)")
            arrays = {key: archive[names[key]] for key in NPZ_KEYS}
    except UsageError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise UsageError(f"{path}: cannot be read as .npz ({' '.join(str(exc).split())})") from None
    train, test = (check_split(arrays[f"x_{s}"], arrays[f"y_{s}"], f"{path} x_{s}", f"{path} y_{s}")
                   for s in ("train", "test"))
    return train, test


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_rows(path: Path, rows: list[tuple[int, str]]) -> np.ndarray:
    lines = [line for _, line in rows]
    try:
        return np.loadtxt(lines, delimiter=",", dtype=np.int32, ndmin=2)
    except ValueError:
        pass  # "0.0", or a value that is no number at all: see which
    try:
        return np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        for number, line in rows:
            for cell in line.split(","):
                if not _is_number(cell):
                    raise UsageError(f"{path}: line {number}: {cell.strip()!r} is not a number") from None
        raise UsageError(f"{path}: lines {rows[0][0]}-{rows[-1][0]} cannot be read as numbers") from None


def read_csv(path: Path, split: str) -> Arrays:
    """One split from a CSV file (raw or gzipped by content): per row a label, then 784 pixel values 0-255.

    A header row is optional; where it names a `label` column (or class, digit, target, y) that column holds the
    label, else the first does. Blank lines are skipped. Raises UsageError naming the line at fault: a row of
    another width, a value that is not a number, a label outside 0-9 or a pixel outside 0-255; and
    `the <split> split has no labels` for rows of 784 pixels only (Kaggle's Digit Recognizer test.csv).
    """
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file, so not a CSV") from None
    rows = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        raise UsageError(f"{path}: empty")
    width, label_column, labelled = PIXELS + 1, 0, []
    first_number, first = rows[0]
    names = [cell.strip().strip('"').lower() for cell in first.split(",")]
    if not all(_is_number(name) for name in names):  # a header row
        rows = rows[1:]
        labelled = [i for i, name in enumerate(names) if name in LABEL_COLUMNS]
        if labelled:
            label_column = labelled[0]
        if len(names) != width and not (len(names) == PIXELS and not labelled):
            raise UsageError(f"{path}: line {first_number} (the header) has {len(names)} names, expected {width} "
                             f"(a label, then {SIDE}x{SIDE} = {PIXELS} pixels)")
        if not rows:
            raise UsageError(f"{path}: a header and no rows")
    if rows[0][1].count(",") + 1 == PIXELS and not labelled:
        raise UsageError(f"{path}: the {split} split has no labels (each row is {PIXELS} pixel values only, as in "
                         f"Kaggle's Digit Recognizer test.csv); use a labelled copy such as mnist_{split}.csv or "
                         "the IDX files")
    for number, line in rows:
        if line.count(",") + 1 != width:
            raise UsageError(f"{path}: line {number} has {line.count(',') + 1} values, expected {width} "
                             f"(a label, then {SIDE}x{SIDE} = {PIXELS} pixels)")
    images, labels = [], []
    for start in range(0, len(rows), CSV_CHUNK):
        chunk = rows[start:start + CSV_CHUNK]
        values = _parse_rows(path, chunk)
        label, pixels = values[:, label_column], np.delete(values, label_column, axis=1)
        for what, column, high in (("label", label[:, None], 9), ("pixel value", pixels, 255)):
            bad = ~np.isfinite(column) | (column != np.round(column)) | (column < 0) | (column > high)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                value = column[row, col]
                fault = "outside" if value == np.round(value) else "not a whole number in"
                raise UsageError(f"{path}: line {chunk[row][0]}: {what} {value:g} is {fault} 0-{high}")
        images.append(pixels.astype(np.uint8).reshape(-1, SIDE, SIDE))
        labels.append(label.astype(np.uint8))
    return check_split(np.concatenate(images), np.concatenate(labels), str(path), str(path))


def read_csv_form(paths: dict[str, Path]) -> tuple[Arrays, Arrays]:
    """(train, test) from the "train_csv" and "test_csv" files. Raises UsageError as read_csv."""
    return read_csv(paths["train_csv"], "train"), read_csv(paths["test_csv"], "test")


_READERS: dict[str, Callable[[dict[str, Path]], tuple[Arrays, Arrays]]] = {
    "IDX": read_idx_form, "NPZ": read_npz_form, "CSV": read_csv_form,
}
