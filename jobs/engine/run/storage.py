"""Where runs write, checked before Ray starts: a local folder, or a storage URI (s3://, gs://, abfs://, hdfs://,
file://) that Ray Tune and Ray Train open with pyarrow.

A URI is opened as Ray 2.60 opens a RunConfig's storage_path (`get_fs_and_path` in ray/train/_internal/storage.py
and ray/train/v2/_internal/execution/storage.py: `pyarrow.fs.FileSystem.from_uri`), so the endpoint, region and
credentials come from the same place: for S3, the URI and the AWS_* environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE). Then a small probe object is written and deleted where the
runs will write. The probe runs in a child process that is killed after PROBE_TIMEOUT_S: an endpoint that accepts
connections and never answers held pyarrow for 199 s here, and a pyarrow call cannot be left behind in a thread
(the interpreter's exit waits for it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from jobs.engine.errors import UsageError

PROBE_TIMEOUT_S = 30.0  # the longest a URI check takes: ~1 s when the storage answers
PROBE_PREFIX = ".archsweep-write-check-"
ROOT = Path(__file__).resolve().parents[3]  # the repository, for the child's `python -m`
# A scheme, then ':/': also what a Path makes of a URI ("s3://b/x" -> "s3:/b/x").
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
# A run's folder name (a sweep's, a jobs.train run's): one folder under --output, no separators, no leading dot.
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_uri(location: str | Path) -> bool:
    return bool(URI.match(str(location)))


def check_writable(folder: str | Path, flag: str) -> Path:
    """Create FOLDER if needed and prove a file can be written there; returns it absolute. UsageError naming FLAG
    when it cannot be created or written (a file in the way, a read-only place) or is a URI, not a folder."""
    if is_uri(folder):
        raise UsageError(f"{flag} {folder}: a local folder is needed here, not a URI (records are written there as "
                         "files)")
    folder = Path(folder).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=PROBE_PREFIX):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot create or write there ({exc.strerror or exc})") from None
    return folder


def check_folder_name(name: str, flag: str = "--name") -> str:
    """NAME as one folder under --output (letters, digits, '.', '_', '-'; at most 100); UsageError otherwise."""
    if not FOLDER_NAME.match(name):
        raise UsageError(f"{flag} {name!r}: use letters, digits, '.', '_' or '-' (not first), at most 100")
    return name


def check_storage(location: str, flag: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """LOCATION as Tune/Train storage: a folder (created, writable; returned absolute) or a URI that pyarrow opens and
    where a probe object is written and deleted within TIMEOUT_S seconds (returned as given).

    UsageError, one line naming FLAG: an unknown scheme, options in the URI, a missing bucket, no or refused
    credentials, an endpoint that cannot be reached or does not answer, a read-only location."""
    if not is_uri(location):
        return str(check_writable(location, flag))
    split = urlsplit(location)
    if split.query:
        # The sweep adds its folders to the storage URI (URI/<sweep>/<model>), which would land inside the query.
        raise UsageError(f"{flag} {location}: options after '?' are not kept when the sweep adds its folders to the "
                         f"URI; give {split.scheme}://{split.netloc}{split.path} and set them in the environment "
                         "(AWS_ENDPOINT_URL=http://HOST:PORT for an S3-compatible server)")
    if split.scheme in ("file", "local"):
        check_writable(split.path, flag)
        return location
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        child = subprocess.run([sys.executable, "-m", __name__, location], capture_output=True, text=True,
                               timeout=timeout_s, env={**os.environ, "PYTHONPATH": path})
    except subprocess.TimeoutExpired:  # the child is killed by its pid
        raise UsageError(f"{flag} {location}: no answer from {endpoint(split)} within {timeout_s:g} s; "
                         f"{where_to_look(split)}") from None
    if child.returncode != 0:
        failure = (child.stdout.strip() or child.stderr.strip() or "no reason given").splitlines()[-1]
        raise UsageError(f"{flag} {location}: {explain(split, failure)}")
    return location


def explain(split, failure: str) -> str:
    """What is wrong with the storage URI SPLIT and what to set, from the probe's FAILURE (pyarrow's message)."""
    detail = failure if len(failure) <= 200 else failure[:197] + "..."
    if "Unrecognized filesystem type" in failure:
        return (f"pyarrow, which Ray Tune and Ray Train write through, has no filesystem for '{split.scheme}://'; "
                "give a folder, or an s3://, gs://, abfs:// or hdfs:// URI")
    if split.scheme != "s3":
        return f"cannot write there ({detail})"
    bucket = split.netloc
    if re.search(r"Bucket '[^']*' not found|NoSuchBucket|RESOURCE_NOT_FOUND|NOT_FOUND", failure):
        return (f"bucket {bucket!r} does not exist on {endpoint(split)}; create it (a sweep does not create "
                "buckets), or correct the bucket name or AWS_ENDPOINT_URL")
    if "NETWORK_CONNECTION" in failure or "curlCode" in failure:
        return f"cannot reach {endpoint(split)} ({detail}); {where_to_look(split)}"
    if re.search(r"ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden|credentials",
                 failure):
        who = ("these credentials" if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
               else "anonymous requests (neither AWS_ACCESS_KEY_ID nor AWS_PROFILE is set)")
        return (f"{endpoint(split)} does not let {who} write to {bucket}{split.path} ({detail}); set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) of an identity that may write there")
    return f"cannot write there ({detail})"


def endpoint(split) -> str:
    if split.scheme != "s3":
        return f"{split.scheme}://{split.netloc}"
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (AWS_ENDPOINT_URL is not set)"


def where_to_look(split) -> str:
    if split.scheme == "s3" and os.environ.get("AWS_ENDPOINT_URL"):
        return "check AWS_ENDPOINT_URL and the network"
    if split.scheme == "s3":
        return "for an S3-compatible server set AWS_ENDPOINT_URL=http://HOST:PORT; for AWS itself check the network"
    return "check the network"


def probe(location: str) -> None:
    """Open LOCATION as Ray does, then write and delete a small object there; raises what pyarrow raises."""
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(location)
    if isinstance(filesystem, pafs.S3FileSystem):
        # The same options, each failure reported once and soon: by default the AWS SDK retries a refused
        # connection for ~12 s, and waits minutes on a silent one.
        options = filesystem.__reduce__()[1][0]
        filesystem = pafs.S3FileSystem(**{**options, "connect_timeout": 5, "request_timeout": 10},
                                       retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1))
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        raise NotADirectoryError(f"{path} is a file, not a folder")
    filesystem.create_dir(path)
    written = f"{path.rstrip('/')}/{PROBE_PREFIX}{os.getpid()}"
    with filesystem.open_output_stream(written) as out:
        out.write(b"archsweep write check\n")
    filesystem.delete_file(written)


def main(location: str) -> int:
    """The child's side of check_storage: exit 0, or 1 with the failure on one line of stdout."""
    try:
        probe(location)
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent, which explains it
        print(" ".join(str(exc).split()) or type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
