"""Keep Ray's own traffic local: an embedded Ray on the loopback interface, and no proxy between Ray's parts.

Ray decides which address its processes bind to when `ray` is first imported, so `prefer_loopback` must run
before that import. A Ray that joins a cluster (`--address`, RAY_ADDRESS) is left alone: its nodes must reach
each other.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

# Ray's switch for single-machine platforms: node address 127.0.0.1, every server bound to it.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")


def prefer_loopback(address: str | None) -> None:
    if address or os.environ.get("RAY_ADDRESS") or "ray" in sys.modules:
        return
    os.environ.setdefault(LOOPBACK_SWITCH, "0")


def head_host(address: str | None) -> str | None:
    """The host of a Ray address: HOST:PORT, ray://HOST:PORT or http://HOST:PORT (None for auto/local)."""
    if not address or address in ("auto", "local"):
        return None
    split = urlsplit(address if "://" in address else f"//{address}")
    return split.hostname


def bypass_proxies(address: str | None) -> list[str]:
    """Add the loopback names and the Ray head to NO_PROXY/no_proxy, keeping what the user set.

    Ray's processes call each other over HTTP (the dashboard's state API, the job agent); an HTTP_PROXY in the
    environment sends those calls to the proxy, and a sweep then waits forever for a placement group that is
    never freed. Every process Ray starts inherits this environment, so it must be set before ray.init.
    """
    wanted = [*LOCAL_HOSTS, *filter(None, [head_host(address or os.environ.get("RAY_ADDRESS"))])]
    current = [h.strip() for var in NO_PROXY_VARS for h in os.environ.get(var, "").split(",") if h.strip()]
    merged = list(dict.fromkeys([*current, *wanted]))
    for var in NO_PROXY_VARS:
        os.environ[var] = ",".join(merged)
    return merged
