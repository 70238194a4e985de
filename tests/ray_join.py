"""`ray start` for a worker node that joins a head on 127.0.0.1, with every server of it bound to 127.0.0.1.

Ray 2.60 has one switch, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, for two things: off, a node's address is 127.0.0.1
(what the tests want, conftest.py sets it off); on, `ray start --address` may join a head, but 127.0.0.1 in
--address and --node-ip-address is replaced by the machine's outward address, where the head does not listen. This
runs Ray's own CLI with the switch off and only its refusal to join lifted, by giving the CLI a view of Ray's
constants in which joining is allowed. Usage: python -m tests.ray_join start --address HOST:PORT --block ...
"""

import sys
import types

import ray._private.ray_constants as constants
from ray.scripts import scripts


class JoinAllowed(types.ModuleType):
    """Ray's constants as they are, but for ENABLE_RAY_CLUSTER, which the CLI checks before a node joins."""

    ENABLE_RAY_CLUSTER = True

    def __getattr__(self, name: str) -> object:
        return getattr(constants, name)


if __name__ == "__main__":
    scripts.ray_constants = JoinAllowed(constants.__name__)
    sys.argv[0] = "ray"
    sys.exit(scripts.main())
