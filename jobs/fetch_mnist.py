"""`python -m jobs.fetch_mnist`: make sure a folder holds valid MNIST, downloading it only if it does not.

The cluster's head runs this before Ray starts (the `fetch-mnist` init container in k8s/base), because the
jobs read a named folder and never download into it. It accepts every layout the jobs read (flat or
torchvision's MNIST/raw/, raw or .gz), so a volume seeded by hand on a cluster without internet access is
used as it is; torchvision alone would look only in MNIST/raw/ and try to download again.
"""

from __future__ import annotations

import argparse

from jobs.engine.data import download, load_mnist, resolve_data_dir
from jobs.engine.errors import ArgumentParser, UsageError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m jobs.fetch_mnist", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the folder to check and fill (default: $MNIST_DATA_DIR)")
    return parser.parse_args(argv)


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
        download(folder)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
    except UsageError as exc:
        raise UsageError(f"{exc}; without internet access, copy the four IDX files there first "
                         "(docs/cluster.md)") from None
    # Read back through the same checks as the jobs: a bad download fails here, not in every trial.
    print(f"{folder}: MNIST downloaded and checked ({load_mnist(str(folder)).sizes()})")
    return 0


if __name__ == "__main__":
    run_cli(main)
