"""Every common form of MNIST reads as the same data, and every broken one is one `error:` line saying what is wrong.

Issue 18's faults: (1) Kaggle's layout, (2) gzip decided by the name, (3) CSV and Keras's mnist.npz; the repair
of a broken folder (4) is in test_fetch_mnist.py. Each form is written from the same small synthetic arrays.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from jobs.engine.data.formats import locate
from jobs.engine.data.mnist import FILES, IMAGE_MAGIC, LABEL_MAGIC, Mnist, find_file, load_mnist
from tests.cli import assert_usage_error, run_in_process
from tests.idx_files import idx_bytes, idx_contents, mnist_arrays, write_csv, write_mnist, write_npz

SPLITS = mnist_arrays()
CONTENT = idx_contents(SPLITS)
DOT = {key: stem.replace("-idx", ".idx") for key, stem in FILES.items()}  # Kaggle: train-images.idx3-ubyte


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Mnist:
    """The synthetic set read from the four original .gz files, as before issue 18."""
    return load_mnist(str(write_mnist(tmp_path_factory.mktemp("reference"))))


def assert_same(data: Mnist, reference: Mnist) -> None:
    for name in Mnist.__dataclass_fields__:
        assert torch.equal(getattr(data, name), getattr(reference, name)), name


def assert_error(folder: Path, capsys, *fragments: str) -> str:
    """load_mnist on `folder` through the command-line error handling: one `error:` line holding every fragment."""
    def main(args: list[str]) -> int:
        load_mnist(args[0])
        return 0

    proc = run_in_process(main, [str(folder)], capsys)
    assert_usage_error(proc, *fragments)
    return proc.stderr


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# --- 1. Kaggle's "MNIST Dataset" and other IDX layouts --------------------------------------------------------

LAYOUTS = {
    # what Kaggle's archive unpacks to: dot names beside folders that hold the file again under the dash name
    "kaggle": lambda folder, key: [folder / DOT[key], folder / FILES[key] / FILES[key]],
    "kaggle-folders-only": lambda folder, key: [folder / FILES[key] / FILES[key]],
    "kaggle-dots-only": lambda folder, key: [folder / DOT[key]],
    "kaggle-nested": lambda folder, key: [folder / "archive" / FILES[key] / DOT[key]],
    "raw-subfolder": lambda folder, key: [folder / "raw" / FILES[key]],
    "torchvision": lambda folder, key: [folder / "MNIST" / "raw" / FILES[key]],
    "uppercase": lambda folder, key: [folder / FILES[key].upper()],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_idx_layouts_read_the_same_data(tmp_path, layout, reference):
    folder = tmp_path / "data"
    for key, data in CONTENT.items():
        for path in LAYOUTS[layout](folder, key):
            write(path, data)
    assert_same(load_mnist(str(folder)), reference)


def test_kaggle_folder_named_like_the_file_is_found(tmp_path):
    """Fault 1: `train-images-idx3-ubyte/` is a folder there; the file is inside it (and beside it, dotted)."""
    folder = tmp_path / "data"
    for key, data in CONTENT.items():
        write(folder / FILES[key] / FILES[key], data)
    assert find_file(folder, FILES["train_images"]) == folder / FILES["train_images"] / FILES["train_images"]


def test_macos_twins_and_hidden_folders_are_never_read(tmp_path, reference):
    """A zip made on a Mac carries `._name` twins and `__MACOSX/`; an interrupted download leaves a hidden folder."""
    folder = tmp_path / "data"
    for key, data in CONTENT.items():
        write(folder / FILES[key], data)
        write(folder / f"._{FILES[key]}", b"\x00\x05\x16\x07 AppleDouble")
        write(folder / "__MACOSX" / f"._{FILES[key]}", b"\x00\x05\x16\x07")
        write(folder / ".fetch-mnist-abc" / "MNIST" / "raw" / FILES[key], data[:50])
    assert_same(load_mnist(str(folder)), reference)


def test_a_half_download_in_a_hidden_folder_is_not_mnist(tmp_path, capsys):
    folder = tmp_path / "data"
    for key, data in CONTENT.items():
        write(folder / ".fetch-mnist-abc" / "MNIST" / "raw" / FILES[key], data)
    assert_error(folder, capsys, "no MNIST here (found no files, only .fetch-mnist-abc/)")


# --- 2. gzip told by content, not by name --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["gzipped-under-raw-name", "raw-under-gz-name", "mixed"])
def test_gzip_is_detected_by_content(tmp_path, how, reference):
    folder = tmp_path / "data"
    for i, (key, data) in enumerate(CONTENT.items()):
        gz = {"gzipped-under-raw-name": True, "raw-under-gz-name": False, "mixed": i % 2 == 0}[how]
        name = FILES[key] + ("" if how == "gzipped-under-raw-name" else ".gz")
        write(folder / name, data, gz=gz)
    assert_same(load_mnist(str(folder)), reference)


def test_a_broken_gzip_is_still_named(tmp_path, capsys):
    folder = write_mnist(tmp_path / "data", gz=False)
    (folder / FILES["train_labels"]).write_bytes(gzip.compress(CONTENT["train_labels"])[:-20])
    assert_error(folder, capsys, f"{folder / FILES['train_labels']}: cannot be read or decompressed")


# --- 3. CSV and Keras's mnist.npz ----------------------------------------------------------------------------

CSV_VARIANTS = {
    "mnist_train.csv": dict(names=("mnist_train.csv", "mnist_test.csv")),
    "kaggle-header": dict(names=("mnist_train.csv", "mnist_test.csv"), header=True),
    "train.csv": dict(names=("train.csv", "test.csv"), header=True),
    "uppercase": dict(names=("MNIST_TRAIN.CSV", "MNIST_TEST.CSV")),
    "csv.gz": dict(names=("mnist_train.csv.gz", "mnist_test.csv.gz"), gz=True),
    "gzipped-under-csv-name": dict(names=("mnist_train.csv", "mnist_test.csv"), gz=True),
    "windows-newlines": dict(names=("mnist_train.csv", "mnist_test.csv"), newline="\r\n"),
    "trailing-blank-lines": dict(names=("mnist_train.csv", "mnist_test.csv"), trailer="\n  \n"),
    "in-a-subfolder": dict(names=("csv/mnist_train.csv", "csv/mnist_test.csv")),
}


@pytest.mark.parametrize("variant", CSV_VARIANTS)
def test_csv_reads_the_same_data(tmp_path, variant, reference):
    options = dict(CSV_VARIANTS[variant])
    train_name, test_name = options.pop("names")
    folder = tmp_path / "data"
    write_csv(folder / train_name, SPLITS["train"], **options)
    write_csv(folder / test_name, SPLITS["test"], **options)
    assert_same(load_mnist(str(folder)), reference)


def test_colab_sample_data_reads_the_mnist_csvs(tmp_path):
    """Colab's sample_data: mnist_train_small.csv and mnist_test.csv beside the California housing CSVs."""
    folder = tmp_path / "sample_data"
    write_csv(folder / "mnist_train_small.csv", SPLITS["train"])
    write_csv(folder / "mnist_test.csv", SPLITS["test"])
    for name in ("california_housing_train.csv", "california_housing_test.csv"):
        write(folder / name, b"longitude,latitude,median_house_value\n-114.3,34.2,66900\n")
    assert locate(folder).paths == {"train_csv": folder / "mnist_train_small.csv",
                                    "test_csv": folder / "mnist_test.csv"}
    assert load_mnist(str(folder)).sizes() == {"train": 110, "val": 10, "test": 40}


def test_csv_label_column_named_in_the_header_and_float_values(tmp_path, reference):
    """A header decides where the label is; values written as `0.0` by a float export are whole numbers."""
    folder = tmp_path / "data"
    folder.mkdir()
    for split in ("train", "test"):
        images, labels = SPLITS[split]
        table = np.concatenate([images.reshape(len(images), -1), labels[:, None]], axis=1).astype(float)
        header = ",".join([*(f"pixel{i}" for i in range(784)), "label"])
        np.savetxt(folder / f"{split}.csv", table, fmt="%.1f", delimiter=",", header=header, comments="")
    assert_same(load_mnist(str(folder)), reference)


@pytest.mark.parametrize("header", [True, False])
def test_kaggle_digit_recognizer_test_csv_has_no_labels(tmp_path, capsys, header):
    """Kaggle's competition: train.csv is labelled, test.csv is pixels only: no test accuracy can come of it."""
    folder = tmp_path / "digit-recognizer"
    write_csv(folder / "train.csv", SPLITS["train"], header=True)
    images = SPLITS["test"][0].reshape(40, -1)
    rows = ([",".join(f"pixel{i}" for i in range(784))] if header else []) + [",".join(map(str, r)) for r in images]
    write(folder / "test.csv", "\n".join(rows).encode() + b"\n")
    write(folder / "sample_submission.csv", b"ImageId,Label\n1,0\n")
    assert_error(folder, capsys, f"{folder / 'test.csv'}: the test split has no labels")


def csv_lines(split: str = "test") -> list[str]:
    images, labels = SPLITS[split]
    return [",".join(map(str, [int(label), *image.reshape(-1).tolist()])) for image, label in zip(images, labels,
                                                                                                  strict=True)]


@pytest.mark.parametrize(("change", "fragments"), [
    (lambda lines: lines[:6] + [lines[6] + ",0"] + lines[7:], ["line 7 has 786 values, expected 785"]),
    (lambda lines: lines[:-1] + [lines[-1][:1000]], ["line 40 has", "expected 785"]),  # an interrupted copy
    (lambda lines: lines[:2] + ["11" + lines[2][1:]] + lines[3:], ["line 3: label 11 is outside 0-9"]),
    (lambda lines: lines[:4] + [lines[4].rsplit(",", 1)[0] + ",256"] + lines[5:],
     ["line 5: pixel value 256 is outside 0-255"]),
    (lambda lines: lines[:1] + [lines[1].replace(",", ",abc", 1)] + lines[2:], ["line 2: '", "is not a number"]),
    (lambda lines: lines[:1] + ["1.5" + lines[1][1:]] + lines[2:], ["line 2: label 1.5 is not a whole number"]),
    (lambda lines: [], ["mnist_test.csv: empty"]),
])
def test_a_bad_csv_row_names_its_line(tmp_path, capsys, change, fragments):
    folder = tmp_path / "data"
    write_csv(folder / "mnist_train.csv", SPLITS["train"])
    write(folder / "mnist_test.csv", "\n".join(change(csv_lines())).encode())
    assert_error(folder, capsys, str(folder / "mnist_test.csv"), *fragments)


def test_a_csv_without_its_other_half(tmp_path, capsys):
    folder = tmp_path / "data"
    write_csv(folder / "mnist_train.csv", SPLITS["train"])
    assert_error(folder, capsys, "mnist_train.csv has no test CSV beside it", "mnist_test.csv or test.csv")


def test_keras_mnist_npz(tmp_path, reference):
    folder = tmp_path / "keras"
    write_npz(folder / "mnist.npz", SPLITS)
    assert_same(load_mnist(str(folder)), reference)


def test_npz_with_flat_images_and_other_names_first(tmp_path, reference):
    """[N, 784] arrays, any file name; mnist.npz is preferred over another .npz in the same folder."""
    folder = tmp_path / "data"
    flat = {split: (images.reshape(len(images), -1), labels) for split, (images, labels) in SPLITS.items()}
    write_npz(folder / "digits.npz", flat)
    assert_same(load_mnist(str(folder)), reference)
    write_npz(folder / "mnist.npz", mnist_arrays(n_test=20))
    assert load_mnist(str(folder)).sizes()["test"] == 20


def bad_npz(folder: Path, how: str) -> Path:
    path = folder / "mnist.npz"
    if how == "wrong-keys":
        return write_npz(path, SPLITS, keys=("train_images", "train_labels", "test_images", "test_labels"))
    if how == "truncated":
        data = write_npz(path, SPLITS).read_bytes()
        return write(path, data[:len(data) // 2])
    if how == "not-a-zip":
        return write(path, b"\x93NUMPY this is an .npy, not an .npz")
    splits = dict(SPLITS)
    images, labels = SPLITS["train"]
    if how == "scaled-0-1":
        splits["train"] = (images / 255.0, labels)
    elif how == "one-hot":
        splits["train"] = (images, np.eye(10, dtype=np.uint8)[labels])
    elif how == "label-11":
        splits["train"] = (images, np.where(labels == 3, 11, labels))
    elif how == "count":
        splits["train"] = (images, labels[:-1])
    elif how == "32x32":
        splits["train"] = (np.zeros((120, 32, 32), np.uint8), labels)
    elif how == "negative-pixel":
        splits["train"] = (images.astype(np.int16) - 1, labels)
    return write_npz(path, splits)


@pytest.mark.parametrize(("how", "fragments"), [
    ("wrong-keys", ["holds arrays train_images, train_labels, test_images, test_labels",
                    "expected x_train, y_train, x_test, y_test"]),
    ("truncated", ["cannot be read as .npz"]),
    ("not-a-zip", ["not an .npz archive"]),
    ("scaled-0-1", ["x_train: pixels hold", "scaled to 0-1?"]),
    ("one-hot", ["y_train: labels of shape [120, 10], expected [N]"]),
    ("label-11", ["y_train: label 11 is outside 0-9"]),
    ("count", ["y_train: 119 labels for 120 images"]),
    ("32x32", ["x_train: images are 32x32, expected 28x28"]),
    ("negative-pixel", ["x_train: pixel value -1 is outside 0-255"]),
])
def test_a_bad_npz_says_what_is_wrong(tmp_path, capsys, how, fragments):
    folder = tmp_path / "data"
    path = bad_npz(folder, how)
    assert_error(folder, capsys, str(path), *fragments)


# --- the same checks on IDX, and what a folder that fits nothing says ------------------------------------------


@pytest.mark.parametrize(("key", "array", "magic", "fragments"), [
    ("train_labels", np.array([1, 11, 3] * 40, np.uint8), LABEL_MAGIC, ["label 11 is outside 0-9"]),
    ("test_images", np.zeros((40, 32, 32), np.uint8), IMAGE_MAGIC, ["images are 32x32, expected 28x28"]),
    ("test_images", SPLITS["test"][1], LABEL_MAGIC, ["bad magic number 0x00000801", "it is a label file"]),
])
def test_idx_contents_are_checked(tmp_path, capsys, key, array, magic, fragments):
    folder = write_mnist(tmp_path / "data", gz=False)
    write(folder / FILES[key], idx_bytes(array, magic))
    assert_error(folder, capsys, str(folder / FILES[key]), *fragments)


def test_nothing_fits_lists_what_is_there_and_what_was_expected(tmp_path, capsys):
    folder = tmp_path / "data"
    for name in ("README.txt", "weights.pt", "a/b.bin", "c.json", "d.json", "e.json", "f.json", "g.json"):
        write(folder / name, b"x")
    line = assert_error(folder, capsys, f"{folder}: no MNIST here (found README.txt, c.json, d.json",
                        "and 2 more", "expected the four IDX files", "mnist.npz", "mnist_train.csv")
    assert "a/b.bin" not in line  # the shallowest names first


@pytest.mark.parametrize(("make", "fragments"), [
    (lambda folder: folder.mkdir(), ["no MNIST here (found nothing: the folder is empty)"]),
    (lambda folder: (folder / "empty-subfolder").mkdir(parents=True), ["found no files, only empty-subfolder/"]),
    (lambda folder: write(folder, b"not a folder"), ["is a file, not a data folder"]),
])
def test_an_empty_folder_or_a_file(tmp_path, capsys, make, fragments):
    folder = tmp_path / "data"
    make(folder)
    assert_error(folder, capsys, *fragments)


def test_a_missing_idx_file_lists_the_ones_found(tmp_path, capsys):
    folder = write_mnist(tmp_path / "data")
    (folder / (FILES["test_labels"] + ".gz")).unlink()
    assert_error(folder, capsys, f"{folder / FILES['test_labels']}: missing", "found t10k-images-idx3-ubyte.gz")


# --- a folder holding more than one form: IDX, then NPZ, then CSV ----------------------------------------------


def test_order_of_preference(tmp_path):
    """Each form holds a different number of test images, so the size says which was read."""
    folder = tmp_path / "data"
    write_csv(folder / "mnist_train.csv", SPLITS["train"])
    write_csv(folder / "mnist_test.csv", mnist_arrays(n_test=10)["test"])
    assert locate(folder).form == "CSV" and load_mnist(str(folder)).sizes()["test"] == 10
    write_npz(folder / "mnist.npz", mnist_arrays(n_test=20))
    assert locate(folder).form == "NPZ" and load_mnist(str(folder)).sizes()["test"] == 20
    write_mnist(folder, n_test=30)
    assert locate(folder).form == "IDX" and load_mnist(str(folder)).sizes()["test"] == 30


def test_a_partial_idx_set_does_not_hide_a_complete_csv_pair(tmp_path):
    folder = tmp_path / "data"
    write_csv(folder / "mnist_train.csv", SPLITS["train"])
    write_csv(folder / "mnist_test.csv", SPLITS["test"])
    write(folder / (FILES["train_images"] + ".gz"), CONTENT["train_images"], gz=True)
    assert locate(folder).form == "CSV"


def test_a_broken_idx_file_is_an_error_even_beside_a_good_csv(tmp_path, capsys):
    """No silent fall-back: the broken copy would otherwise stay unnoticed until the CSV goes."""
    folder = tmp_path / "data"
    write_csv(folder / "mnist_train.csv", SPLITS["train"])
    write_csv(folder / "mnist_test.csv", SPLITS["test"])
    write_mnist(folder, gz=False)
    target = folder / FILES["train_images"]
    target.write_bytes(target.read_bytes()[:-100])
    assert_error(folder, capsys, f"{target}: ", "truncated or corrupt")
