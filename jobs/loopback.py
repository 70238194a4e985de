"""Keep an embedded, single-machine Ray on the loopback interface.

Ray decides which address its processes bind to when `ray` is first imported, so this must run before that
import. A Ray that joins a cluster (`--address`, RAY_ADDRESS) is left alone: its nodes must reach each other.
"""

from __future__ import annotations

import os
import sys

# Ray's switch for single-machine platforms: node address 127.0.0.1, every server bound to it.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def prefer_loopback(address: str | None) -> None:
    if address or os.environ.get("RAY_ADDRESS") or "ray" in sys.modules:
        return
    os.environ.setdefault(LOOPBACK_SWITCH, "0")
