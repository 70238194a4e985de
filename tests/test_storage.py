"""Storage checked before Ray starts (jobs/engine/run/storage.py): a folder, or a URI opened as Ray opens it and written
to, each fault one UsageError line that says what to set. The S3 faults are a real S3-compatible server's answers
(tests/s3_server.py); the checks that need no server run without one."""

import json
import socket

import pytest

from jobs.engine.errors import UsageError
from jobs.engine.run.storage import check_storage, check_writable
from tests.ray_head import free_port
from tests.s3_server import KEYS, session_s3_server


def refused(location, flag="--storage", **kwargs) -> str:
    with pytest.raises(UsageError) as caught:
        check_storage(location, flag, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{flag} "), message
    return message


@pytest.fixture(scope="module")
def s3(request):
    server = session_s3_server(request.config)
    server.create_bucket("sweeps")
    return server


@pytest.fixture
def s3_env(s3, monkeypatch):
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    return s3


def test_options_in_the_uri_are_refused_with_where_to_set_them():
    # Ray would take them, but the sweep adds its folders after them: URI?endpoint_override=h/<sweep>/<model>.
    message = refused("s3://sweeps/a?endpoint_override=127.0.0.1:9000&scheme=http")
    assert "give s3://sweeps/a" in message and "AWS_ENDPOINT_URL=http://HOST:PORT" in message


def test_a_read_only_or_occupied_place_behind_a_file_uri(tmp_path):
    assert check_storage(f"file://{tmp_path}/new", "--storage") == f"file://{tmp_path}/new"
    assert (tmp_path / "new").is_dir()
    assert "cannot create or write there" in refused("file:///proc/archsweep")
    (tmp_path / "a-file").write_text("x")
    assert "cannot create or write there" in refused(f"file://{tmp_path}/a-file/sub")


@pytest.mark.parametrize("uri", ["s3://bucket/x", "gs://bucket/x"])
def test_a_uri_where_a_local_folder_is_needed(uri):
    with pytest.raises(UsageError, match=f"--output {uri}: a local folder is needed here, not a URI"):
        check_writable(uri, "--output")


@pytest.mark.process
def test_a_scheme_pyarrow_has_no_filesystem_for():
    assert "no filesystem for 'foo://'" in refused("foo://bucket/x")


@pytest.mark.process
def test_an_endpoint_that_refuses_or_never_answers_is_named_within_the_bound(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEYS["AWS_SECRET_ACCESS_KEY"])
    assert "cannot reach http://127.0.0.1:" in refused("s3://sweeps/x")
    # One that accepts the connection and never answers held pyarrow for 199 s: the check gives up at its bound.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        message = refused("s3://sweeps/x", timeout_s=1)
    assert "no answer from http://127.0.0.1:" in message and "within 1 s" in message


@pytest.mark.process
def test_a_missing_bucket(s3_env):
    message = refused("s3://no-such-bucket/runs")
    assert f"bucket 'no-such-bucket' does not exist on {s3_env.endpoint}" in message and "create it" in message


@pytest.mark.process
def test_no_credentials(s3_env, monkeypatch):
    for key in KEYS:
        monkeypatch.delenv(key)
    message = refused("s3://sweeps/runs")
    assert "anonymous requests (neither AWS_ACCESS_KEY_ID nor AWS_PROFILE is set)" in message
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message


@pytest.mark.process
def test_a_read_only_bucket(s3_env):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_env.endpoint, region_name="us-east-1",
                          aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket="read-only")
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::read-only/*"}
    client.put_bucket_policy(Bucket="read-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]}))
    assert "does not let these credentials write to read-only/runs" in refused("s3://read-only/runs")
