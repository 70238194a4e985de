"""Which failures of a run are the cluster's rather than the run's own: a node, a worker process or an actor that
went away (a preempted spot instance, a node killed, an out-of-memory kill of the process). Such a run is retried
from its last checkpoint on the nodes that remain; a run whose own code raised (divergence, a config that crashes,
an injected `fail_at_epoch`) would raise again, so it is not.
"""

from __future__ import annotations

from ray.exceptions import (
    LocalRayletDiedError,
    NodeDiedError,
    ObjectLostError,
    RayActorError,
    RayTaskError,
    WorkerCrashedError,
)

# RayActorError covers ActorDiedError and ActorUnavailableError; ObjectLostError covers OwnerDiedError (an object
# whose only copy was on the lost node).
LOST = (RayActorError, NodeDiedError, WorkerCrashedError, ObjectLostError, LocalRayletDiedError)


def lost_node(error: BaseException) -> bool:
    """True when ERROR, or an error it wraps, says that a node, worker process or actor went away.

    Looked through: a remote task's cause (RayTaskError.cause), `raise ... from` causes, and the per-rank worker
    errors and controller error of a Ray Train run (WorkerGroupError.worker_failures, ControllerError). Not through
    `__context__`: an error raised while another was being handled is the run's own.
    """
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, LOST):
            return True
        if isinstance(current, RayTaskError):
            pending.append(current.cause)
        pending.append(current.__cause__)
        pending.extend(getattr(current, "worker_failures", {}).values())
        pending.append(getattr(current, "controller_failure", None))
    return False
