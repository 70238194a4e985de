"""Offline Kubernetes checks shared by the k8s, Dockerfile and Kubeflow tests: render, validate, walk pods."""

from __future__ import annotations

import copy
import functools
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.paths import REPO

K8S = REPO / "k8s"
# The KubeRay v1.7.0 CRDs live beside the repo (shared/ is checked out next to it), not in it.
SCHEMAS = REPO.parent / "shared" / "schemas" / "kuberay"
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml", "RayCluster": "ray.io_rayclusters.yaml"}
OVERLAYS = ("base", "overlays/gpu", "overlays/cpu", "overlays/cluster")
ENTRYPOINT = "python -m jobs.sweep --preset full --output /results --resume-or-start --name archsweep-sweep"
# The results volume's mount point in every Ray pod.
RESULTS_MOUNT = "/results"

Obj = dict[str, Any]


def kubectl() -> str:
    """kubectl (with its built-in kustomize) is part of the machine image; say so plainly if it is not."""
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: it renders the kustomize overlays (apt package kubectl)")
    return found


@functools.cache
def render(folder: str) -> tuple[Obj, ...]:
    """`kubectl kustomize k8s/<folder>` as parsed objects; cached, since every test reads the same four."""
    out = subprocess.run([kubectl(), "kustomize", str(K8S / folder)], capture_output=True, text=True,
                         timeout=60, check=False)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize k8s/{folder} failed:\n{out.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [obj for obj in objs if obj["kind"] == kind]


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected, as `kubectl apply` (server-side strict field validation) does.

    CRD schemas leave additionalProperties open because the API server prunes unknown fields itself; a
    typo such as `securityContex` would pass plain jsonschema and then be silently dropped on a cluster.
    """
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft4Validator:
    """A validator for the served, stored version (v1) of the KubeRay CRD of this kind."""
    # libyaml when present: the CRDs are 1-1.4 MB and the pure-Python loader takes seconds on them.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((SCHEMAS / CRD_FILES[kind]).read_text(), Loader=loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v.get("storage")]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # CRD schemas are OpenAPI v3 (Draft 4-like); `metadata` is checked by the API server, not the CRD.
    return jsonschema.Draft4Validator(strict(schema))


def crd_errors(obj: Obj) -> list[str]:
    """Every schema violation in a RayJob or RayCluster, as 'path: message' lines."""
    errors = crd_validator(obj["kind"]).iter_errors(obj)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def cluster_spec(obj: Obj) -> Obj:
    """The Ray cluster a RayJob or RayCluster describes (a RayJob nests it under rayClusterSpec)."""
    return obj["spec"]["rayClusterSpec"] if obj["kind"] == "RayJob" else obj["spec"]


def env_values(container: Obj) -> dict[str, str | None]:
    """A container's env as name -> literal value (None where it comes from a Secret or a field)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def pod_templates(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """(label, pod template) for every pod a RayJob or RayCluster makes: head, each worker group, submitter."""
    spec = obj["spec"]
    cluster = cluster_spec(obj)
    yield "head", cluster["headGroupSpec"]["template"]
    for group in cluster.get("workerGroupSpecs", []):
        yield f"worker:{group['groupName']}", group["template"]
    if obj["kind"] == "RayJob" and "submitterPodTemplate" in spec:
        yield "submitter", spec["submitterPodTemplate"]


def containers(template: Obj) -> Iterator[tuple[Obj, bool]]:
    """(container, is_init) for every container of a pod template."""
    for container in template["spec"].get("initContainers", []):
        yield container, True
    for container in template["spec"]["containers"]:
        yield container, False


def ray_objects(folder: str) -> list[Obj]:
    """The rendered RayJobs and RayClusters of one folder."""
    return [obj for obj in render(folder) if obj["kind"] in CRD_FILES]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize, make and docker read them (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def the_rayjob(folder: str) -> Obj:
    """The one RayJob a folder renders."""
    (job,) = of_kind(render(folder), "RayJob")
    return job


def rayjob_entrypoint(folder: str = "base") -> list[str]:
    """The rendered RayJob's entrypoint, split as a shell would."""
    return shlex.split(the_rayjob(folder)["spec"]["entrypoint"])


def as_local_command(entrypoint: list[str], preset: str, results: Path) -> list[str]:
    """The cluster's command with only values changed: the preset, and the volume's paths moved under `results`.

    Module, flags and their order stay as the manifest has them, so a local run of this is the cluster's run.
    """
    command = list(entrypoint)
    command[command.index("--preset") + 1] = preset
    for i, word in enumerate(command):
        if word == RESULTS_MOUNT or word.startswith(RESULTS_MOUNT + "/"):
            command[i] = str(results / Path(word).relative_to(RESULTS_MOUNT))
    return command
