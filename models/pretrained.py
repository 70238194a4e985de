"""The one place that loads ImageNet weights: torch's hub cache, else torchvision's download, else one clear error.

The file name is the one torchvision caches under ($TORCH_HOME/hub/checkpoints/<name in the weights URL>), so a
cache filled by torchvision, by hand or by a Kubernetes volume is found without any download.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import WeightsEnum

from models.registry import Config, ConfigError

# Per socket operation, not for the whole download: an unreachable host fails fast, a slow mirror still works.
DOWNLOAD_TIMEOUT_S = 30.0
StateDict = dict[str, torch.Tensor]


def weights_file(weights: WeightsEnum) -> Path:
    """Where torch.hub caches this weights entry (read at call time, so TORCH_HOME set later is honoured)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


# One download at a time: the socket timeout below is process-wide, and the architectures of a sweep check their
# weights from threads of their own; unserialised, one thread restores the other's setting (and they would only
# share the bandwidth anyway).
DOWNLOADS = threading.Lock()


def download(weights: WeightsEnum) -> StateDict:
    """The weights file fetched into the hub cache as torchvision would (torch.hub.download_url_to_file: a temporary
    file renamed into place, checked against the SHA-256 prefix in its name), then loaded. No progress bar and no
    'Downloading: ...' line; nothing of the process's own (sys.stdout, sys.stderr) is swapped, since that is not
    safe with the sweep's threads: a `contextlib.redirect_stderr` here once left stderr pointing at a buffer after
    two downloads overlapped, and every later `error:` line went into it. Raises what urllib or the check raises."""
    path = weights_file(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    matched = torch.hub.HASH_REGEX.search(path.name)
    with DOWNLOADS:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.download_url_to_file(weights.url, str(path), matched.group(1) if matched else None,
                                           progress=False)
        finally:
            socket.setdefaulttimeout(previous)
    return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict(model: str, weights: WeightsEnum) -> StateDict:
    """The cached file if present, else a download; any failure is a ConfigError naming the fix."""
    path = weights_file(weights)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - truncated, not a state dict, unreadable: all the user's to fix
            raise ConfigError(f"{model}: ImageNet weights at {path} cannot be read ({one_line(exc)}); delete the "
                              "file to download it again, or --set weights=none to train from scratch") from None
    try:
        # One write, newline included: the architectures of a sweep check their weights from threads of their own.
        print(f"{model}: downloading ImageNet weights to {path}\n", end="", flush=True)
        return download(weights)
    except Exception as exc:  # noqa: BLE001 - offline, proxy, HTTP error, full disk: all mean "no weights"
        raise ConfigError(f"{model}: ImageNet weights not found at {path} and the download failed "
                          f"({one_line(exc)}); put {path.name} into the cache folder {path.parent} (it follows "
                          "TORCH_HOME), or --set weights=none to train from scratch") from None


def check_available(model: str, weights: WeightsEnum) -> None:
    """Driver-side check without building the model: the cached file exists, or downloading it succeeds now."""
    if not weights_file(weights).is_file():
        load_state_dict(model, weights)


def assets_check(model: str, weights: WeightsEnum) -> Callable[[Config], None]:
    """The registry's `assets=` hook for a model with a `weights` key (none | imagenet)."""
    def check(cfg: Config) -> None:
        if cfg["weights"] == "imagenet":
            check_available(model, weights)
    return check


def load_imagenet(model: str, net: nn.Module, weights: WeightsEnum, head: str,
                  convert: Callable[[StateDict], StateDict] | None = None) -> None:
    """Load every ImageNet tensor into `net` except the 1000-class `head` layer, which stays freshly initialised."""
    state = load_state_dict(model, weights)
    if convert is not None:
        state = convert(state)
    state = {key: value for key, value in state.items() if not key.startswith(head + ".")}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: a file of another architecture under the expected name
        raise ConfigError(f"{model}: {weights_file(weights)} does not fit torchvision's {model} "
                          f"({one_line(exc)[:300]}); delete it, or --set weights=none") from None
    missing = [key for key in missing if not key.startswith(head + ".")]
    if missing or unexpected:
        raise ConfigError(f"{model}: {weights_file(weights)} does not fit torchvision's {model} (missing "
                          f"{missing[:3]}, unexpected {unexpected[:3]}); delete it, or --set weights=none")


def lr_groups(model: nn.Module, fresh: list[nn.Module], lr: float, scale: float) -> list[dict]:
    """Fresh layers at `lr`, every other (pre-trained) parameter at `lr * scale`. Fresh first: the loop reports
    the first group's lr. Frozen parameters are dropped by the loop."""
    new = {id(p) for module in fresh for p in module.parameters()}
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) in new], "lr": lr},
            {"params": [p for p in params if id(p) not in new], "lr": lr * scale}]


def check_lr_scale(model: str, cfg: Config) -> None:
    if not 0 <= cfg["backbone_lr_scale"] <= 1:
        raise ConfigError(f"{model}: backbone_lr_scale must be in [0, 1] (a fraction of lr for pre-trained "
                          f"layers), got {cfg['backbone_lr_scale']}")
