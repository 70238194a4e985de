"""`python -m jobs.fetch_mnist`: make sure a folder holds valid MNIST, downloading it only if it does not.

The cluster's head runs this before Ray starts (the `fetch-mnist` init container in k8s/base), because the
jobs read a named folder and never download into it. It accepts every form the jobs read (the IDX files raw or
gzipped, flat, in torchvision's MNIST/raw/ or in Kaggle's layout; mnist.npz; a train and a test CSV), so a
volume seeded by hand on a cluster without internet access is used as it is; torchvision alone would look only
in MNIST/raw/ and try to download again. When the folder does not read as MNIST (a file missing, or truncated
by an interrupted copy), it downloads into a temporary folder inside it, checks the download, moves every
differing copy of an IDX file aside as `<name>.broken-<time>` (printed, never deleted) and renames the
downloaded files into MNIST/raw/, so the next start finds valid files instead of failing the same way again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.engine.data.mnist import download, load_mnist, refresh, resolve_data_dir
from jobs.engine.errors import ArgumentParser, UsageError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m jobs.fetch_mnist", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the folder to check and fill (default: $MNIST_DATA_DIR)")
    return parser.parse_args(argv)


def fetch(root: Path) -> Path:
    """torchvision's download into `root`; a failure says how to seed the folder offline (one UsageError line)."""
    try:
        return download(root)
    except UsageError as exc:
        raise UsageError(f"{exc}; without internet access, copy the four IDX files there first (or mnist.npz, "
                         "or a train and a test CSV; docs/cluster.md)") from None


def main(argv: list[str] | None = None) -> int:
    folder = resolve_data_dir(parse_args(argv).data_dir)
    if folder is None:
        raise UsageError("name the folder to fill with --data-dir or MNIST_DATA_DIR")
    try:
        sizes = load_mnist(str(folder)).sizes()
        print(f"{folder}: MNIST already there ({sizes}); nothing downloaded")
        return 0
    except UsageError as reason:
        print(f"{reason}: downloading MNIST with torchvision", flush=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
    for old, new in refresh(folder, fetch):
        print(f"{old}: moved aside as {new.name} (it differs from the MNIST downloaded: truncated, corrupt or "
              "other data)", flush=True)
    # Read back through the same checks as the jobs: a bad download fails here, not in every trial.
    print(f"{folder}: MNIST downloaded and checked ({load_mnist(str(folder)).sizes()}), in MNIST/raw/")
    return 0


if __name__ == "__main__":
    run_cli(main)
