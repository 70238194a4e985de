"""The one ImageNet loader: where it looks, what it loads, and the one-line error when it cannot."""

import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

import models
from jobs.train import main as train_main
from models import pretrained
from tests.cli import run_in_process
from tests.weights import NETWORKS, expected_file, fake_weights

USES_WEIGHTS = ("vgg16", "alexnet", "resnet18")
# Building vgg16 (138M weights) takes seconds on a 2-core CPU.
BUILDS_WEIGHTS = ("alexnet", "resnet18", pytest.param("vgg16", marks=pytest.mark.slow))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A TORCH_HOME without weights, where a download fails at once (CI may be online: never fetch 500 MB)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(weights):
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(pretrained, "download", offline)
    return tmp_path


@pytest.mark.parametrize("name", USES_WEIGHTS)
def test_weights_file_is_where_torch_hub_caches_it(name):
    assert pretrained.weights_file(NETWORKS[name][1]) == expected_file(name)


def test_torchvision_itself_finds_the_fake_file_without_downloading():
    # torchvision's loader takes the cached file when it exists: same folder, same name as ours.
    saved = torch.load(fake_weights("resnet18"), weights_only=True)
    loaded = NETWORKS["resnet18"][1].get_state_dict(progress=False)
    torch.testing.assert_close(loaded["layer1.0.conv1.weight"], saved["layer1.0.conv1.weight"])


def test_vit_needs_no_assets_and_the_others_check_theirs():
    assert models.spec("vit").assets is None
    assert all(models.spec(name).assets is not None for name in USES_WEIGHTS)


@pytest.mark.parametrize("name", BUILDS_WEIGHTS)
def test_missing_weights_are_one_config_error_naming_model_file_and_fix(empty_cache, name):
    file = expected_file(name, empty_cache)
    config = {**models.defaults(name), "weights": "imagenet"}
    for attempt in (lambda: models.spec(name).assets(config), lambda: models.build(name, config)):
        with pytest.raises(models.ConfigError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"{name}: ImageNet weights not found at {file}")
        assert str(file.parent) in message and "--set weights=none" in message and "URLError" in message
        assert "\n" not in message


@pytest.mark.parametrize("name", BUILDS_WEIGHTS)
def test_weights_none_needs_no_file(empty_cache, name):
    config = {**models.defaults(name), "weights": "none"}
    models.spec(name).assets(config)
    assert models.build(name, config)(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_unreadable_and_mismatched_files_are_config_errors(empty_cache):
    file = expected_file("resnet18", empty_cache)
    file.parent.mkdir(parents=True)
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(models.ConfigError, match="cannot be read.*delete the file"):
        models.build("resnet18", {"weights": "imagenet"})
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(1)}, file)
    with pytest.raises(models.ConfigError, match="does not fit torchvision's resnet18"):
        models.build("resnet18", {"weights": "imagenet"})


def test_the_train_command_without_cached_weights_fails_fast_before_ray(tmp_path, mnist_dir, monkeypatch, capsys):
    # A dead proxy makes torchvision's real download fail at once, online or not.
    for key, value in {"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
                       "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}.items():
        monkeypatch.setenv(key, value)
    started = time.monotonic()
    done = run_in_process(train_main, ["--model", "vgg16", "--preset", "smoke", "--data-dir", str(mnist_dir),
                                       "--output", str(tmp_path / "out")], capsys)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: vgg16: ImageNet weights not found at"), done.stderr
    assert str(expected_file("vgg16", tmp_path)) in lines[0] and "--set weights=none" in lines[0]
    # No Ray work started: --output is checked (and created, as jobs.sweep does) but holds no run.
    assert "training vgg16" not in done.stdout and not any((tmp_path / "out").iterdir())
    assert time.monotonic() - started < 120


class SlowWeightsServer:
    """Serves a small state dict at any path on 127.0.0.1, the first request to arrive first and the next one a
    moment later: two downloads from two threads overlap, and end in the order they began."""

    def __init__(self, state_dict: dict) -> None:
        import http.server
        import io
        import threading

        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        body, arrivals, lock = buffer.getvalue(), [], threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with lock:
                    arrivals.append(self.path)
                    place = len(arrivals)
                time.sleep(0.3 * place)  # both in flight at once when the client lets them be; answered in order
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_downloads_from_the_sweeps_threads_leave_the_process_streams_and_socket_timeout_as_they_were(
        tmp_path, monkeypatch, capsys):
    """A sweep checks its architectures' weights from a thread each. The loader once swapped sys.stderr for a buffer
    around each download: two downloads that overlapped left stderr pointing at one of those buffers, and the sweep's
    later `error:` line went into it (the user saw no error, only exit code 2)."""
    import socket
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from torchvision.models._api import Weights, WeightsEnum

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    server = SlowWeightsServer({"w": torch.arange(3.0)})
    files = WeightsEnum("Files", {name: Weights(url=f"{server.url}/{name}-weights.pth", transforms=None, meta={})
                                  for name in ("one", "other")})
    streams, timeout = (sys.stdout, sys.stderr), socket.getdefaulttimeout()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            loaded = list(pool.map(pretrained.download, files))
    finally:
        server.close()
    assert all(torch.equal(state["w"], torch.arange(3.0)) for state in loaded)
    assert all(pretrained.weights_file(weights).is_file() for weights in files)  # in the hub cache, as torchvision
    assert (sys.stdout, sys.stderr) == streams and socket.getdefaulttimeout() == timeout
    print("error: seen", file=sys.stderr)
    out, err = capsys.readouterr()
    assert err == "error: seen\n" and "Downloading" not in out
