"""Reading and validating the IDX files; the real files match the checksums in shared/README.md."""

import gzip
import hashlib
import shutil

import pytest
import torch

from jobs.engine.data.mnist import FILES, limit, load_mnist
from jobs.engine.errors import UsageError
from tests.idx_files import write_mnist

REAL_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea",
    "test_labels": "27ae3e4e09519cfbb04c329615203637",
}


def test_real_files_have_the_published_content(mnist_dir):
    for key, md5 in REAL_MD5.items():
        raw = gzip.decompress((mnist_dir / (FILES[key] + ".gz")).read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5, key


def test_real_mnist_splits_55k_5k_10k_as_uint8(mnist):
    assert mnist.sizes() == {"train": 55_000, "val": 5_000, "test": 10_000}
    assert mnist.train_images.dtype == torch.uint8 and mnist.train_images.shape[1:] == (28, 28)
    assert mnist.train_labels.dtype == torch.int64 and set(mnist.test_labels.unique().tolist()) == set(range(10))


def test_split_is_fixed_and_disjoint(tmp_path):
    folder = write_mnist(tmp_path / "m", n_train=240)
    a, b = load_mnist(str(folder)), load_mnist(str(folder))
    assert torch.equal(a.val_images, b.val_images) and len(a.val_labels) == 20
    train_rows = {bytes(x.numpy()) for x in a.train_images}
    assert not any(bytes(x.numpy()) in train_rows for x in a.val_images)


@pytest.mark.parametrize("layout", ["flat-gz", "flat-raw", "torchvision"])
def test_layouts(tmp_path, layout):
    if layout == "torchvision":
        write_mnist(tmp_path / "root" / "MNIST" / "raw", gz=False)
        folder = tmp_path / "root"
    else:
        folder = write_mnist(tmp_path / "m", gz=layout == "flat-gz")
    assert load_mnist(str(folder)).sizes()["test"] == 40


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(write_mnist(tmp_path / "env")))
    assert load_mnist(None).sizes()["train"] == 110


def corrupt(folder, key, how):
    path = folder / (FILES[key] + ".gz")
    raw = gzip.decompress(path.read_bytes())
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(gzip.compress(raw[:-100]))
    elif how == "bad-gzip":
        path.write_bytes(b"\x1f\x8b" + b"not gzip at all")
    elif how == "bad-magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x09\x99" + raw[4:]))
    elif how == "short-header":
        path.write_bytes(gzip.compress(raw[:6]))
    return path


@pytest.mark.parametrize(("key", "how", "message"), [
    ("train_images", "missing", "missing"),
    ("train_images", "truncated", "truncated or corrupt"),
    ("test_labels", "bad-gzip", "cannot be read or decompressed"),
    ("train_labels", "bad-magic", "bad magic number"),
    ("test_images", "short-header", "truncated header"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, key, how, message):
    folder = write_mnist(tmp_path / "m")
    path = corrupt(folder, key, how)
    with pytest.raises(UsageError) as error:
        load_mnist(str(folder))
    assert message in str(error.value) and FILES[key] in str(error.value)
    assert str(path.parent) in str(error.value)


def test_label_count_must_match_image_count(tmp_path):
    folder = write_mnist(tmp_path / "m")
    other = write_mnist(tmp_path / "other", n_test=30)
    shutil.copy(other / (FILES["test_labels"] + ".gz"), folder)
    with pytest.raises(UsageError, match="30 labels for 40 images"):
        load_mnist(str(folder))


def test_missing_folder(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_mnist(str(tmp_path / "nowhere"))


def test_limit_takes_the_first_n_of_each_split(mnist):
    small = limit(mnist, 100, 10, 20)
    assert small.sizes() == {"train": 100, "val": 10, "test": 20}
    assert torch.equal(small.train_images, mnist.train_images[:100])
