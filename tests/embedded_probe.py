"""Steps of runs in one interpreter, each answered by one JSON line: each Python that imports torch and Ray costs
seconds on 2 cores (tests/test_other_rays.py runs it).

Usage: python -m tests.embedded_probe STEPS, STEPS a JSON list of
- {"embedded": {VARIABLE: value or null}, "affinity": [CPU, ...]}: with the environment changed so (null:
  unset), and this process (so the Ray it starts) allowed only AFFINITY's CPUs if given, as `taskset` allows,
  what the Ray that jobs.engine.run.cluster.connect(None) starts is: {"embedded", "gcs_address", "session_dir",
  "cpus", "gpus", "seconds"}; then shut down, the affinity restored;
- {"wait_for": PATH}: until PATH holds {"env": {VARIABLE: value}, "address": HOST:PORT} (a head that started
  meanwhile), then the environment updated so: {"seconds"};
- {"command": [MODULE, FLAG, ...]}: MODULE's main(FLAGS), "{address}" in a flag replaced by the last address
  waited for, as its command line would end: {"code", "stderr", "seconds"}.
"""

import contextlib
import importlib
import io
import json
import os
import sys
import time

import ray

from jobs.engine.errors import run_cli
from jobs.engine.run.cluster import connect


def embedded(environ: dict[str, str | None], affinity: list[int] | None = None) -> dict:
    for name, value in environ.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    allowed = os.sched_getaffinity(0)
    if affinity is not None:
        os.sched_setaffinity(0, affinity)  # what taskset does; the processes Ray starts inherit it
    started = time.perf_counter()
    own = connect(None)
    resources = ray.cluster_resources()
    answer = {"embedded": own, "gcs_address": ray.get_runtime_context().gcs_address,
              "session_dir": ray._private.worker._global_node.get_session_dir_path(),
              "cpus": resources.get("CPU", 0), "gpus": resources.get("GPU", 0),
              "seconds": round(time.perf_counter() - started, 1)}
    ray.shutdown()
    os.sched_setaffinity(0, allowed)
    return answer


def wait_for(path: str, timeout_s: float = 300) -> dict:
    started = time.perf_counter()
    while not os.path.exists(path):
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.2)
    with open(path) as file:
        head = json.load(file)
    os.environ.update(head["env"])
    # Ray reads the token once per process: its own tests' reset makes it read the head's.
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()
    ADDRESS[0] = head["address"]
    return {"seconds": round(time.perf_counter() - started, 1)}


ADDRESS = [""]  # the last address waited for


def command(module: str, *flags: str) -> dict:
    started, stderr = time.perf_counter(), io.StringIO()
    flags = tuple(flag.replace("{address}", ADDRESS[0]) for flag in flags)
    with contextlib.redirect_stderr(stderr):
        try:
            run_cli(lambda: importlib.import_module(module).main(list(flags)))
        except SystemExit as exit_:
            code = exit_.code
    ray.shutdown()
    return {"code": code, "stderr": stderr.getvalue(), "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    for step in json.loads(sys.argv[1]):
        if "embedded" in step:
            answer = embedded(step["embedded"], step.get("affinity"))
        else:
            answer = wait_for(step["wait_for"]) if "wait_for" in step else command(*step["command"])
        print(json.dumps(answer), flush=True)
