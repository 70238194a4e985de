"""The kustomize overlays render, pass the real schemas (KubeRay v1.7.0 CRDs, Kubernetes core) and say what we mean.

Everything is offline: `kubectl kustomize` renders, jsonschema and kubernetes-validate check. What an API
server or the KubeRay operator would do beyond the schemas is in docs/cluster.md.
"""

from __future__ import annotations

import copy
import re
import shlex

import kubernetes_validate
import pytest

from jobs import sweep as sweep_cli
from tests.k8s_helpers import (
    CRD_FILES,
    ENTRYPOINT,
    OVERLAYS,
    RESULTS_MOUNT,
    SCHEMAS,
    Obj,
    cluster_spec,
    containers,
    crd_errors,
    env_values,
    of_kind,
    pod_templates,
    ray_objects,
    render,
    the_rayjob,
)

pytestmark = pytest.mark.process  # every overlay is rendered by `kubectl kustomize` (once, cached)

# The oldest Kubernetes KubeRay 1.7 supports and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
TOKEN_SECRET = {"name": "archsweep-ray-auth", "key": "auth_token"}
EXPECTED_KINDS = {
    "base": {"PersistentVolumeClaim", "RayJob"},
    "overlays/gpu": {"PersistentVolumeClaim", "RayJob"},
    "overlays/cpu": {"PersistentVolumeClaim", "RayJob"},
    "overlays/cluster": {"PersistentVolumeClaim", "RayCluster", "Service"},
}


def core_errors(obj: Obj, version: str) -> str | None:
    """kubernetes-validate's verdict in strict mode (unknown fields are errors), first line only."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return str(exc).splitlines()[0]
    return None


def test_kuberay_schemas_are_beside_the_repo() -> None:
    for name in CRD_FILES.values():
        assert (SCHEMAS / name).is_file(), f"{SCHEMAS / name} missing: shared/ must be checked out beside the repo"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_overlay_renders_the_expected_objects(folder: str) -> None:
    objs = render(folder)
    assert {obj["kind"] for obj in objs} == EXPECTED_KINDS[folder]
    # versions.env feeds the replacements only; it must not reach the cluster as a ConfigMap.
    assert not of_kind(objs, "ConfigMap")


@pytest.mark.parametrize("folder", OVERLAYS)
def test_ray_objects_match_the_kuberay_crd(folder: str) -> None:
    checked = 0
    for obj in render(folder):
        if obj["kind"] in CRD_FILES:
            assert obj["apiVersion"] == "ray.io/v1"
            assert crd_errors(obj) == [], f"{folder} {obj['kind']}"
            checked += 1
    assert checked == 1


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("folder", OVERLAYS)
def test_core_objects_match_the_kubernetes_schema(folder: str, version: str) -> None:
    for obj in render(folder):
        if obj["kind"] not in CRD_FILES:
            assert core_errors(obj, version) is None, f"{folder} {obj['kind']}"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_ray_pod_templates_match_the_kubernetes_schema(folder: str) -> None:
    """The CRD embeds PodTemplateSpec; checking each one as a core PodTemplate too catches what it may lag on."""
    for obj in ray_objects(folder):
        for label, template in pod_templates(obj):
            wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"}, "template": template}
            assert core_errors(wrapped, K8S_VERSIONS[-1]) is None, f"{folder} {obj['kind']} {label}"


def test_validation_rejects_what_an_api_server_would() -> None:
    """The checks above can fail: wrong types, unknown fields and bad enums are caught, in both validators."""
    good = the_rayjob("overlays/gpu")
    assert crd_errors(good) == []

    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "four"
    assert any("replicas" in e for e in crd_errors(wrong_type))

    typo = copy.deepcopy(good)
    head = typo["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head["securityContex"] = head.pop("securityContext")
    assert any("securityContex" in e for e in crd_errors(typo))

    bad_enum = copy.deepcopy(good)
    bad_enum["spec"]["rayClusterSpec"]["authOptions"]["mode"] = "password"
    assert any("authOptions" in e for e in crd_errors(bad_enum))

    no_groupname = copy.deepcopy(good)
    del no_groupname["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]
    assert any("groupName" in e for e in crd_errors(no_groupname))

    (pvc,) = of_kind(render("overlays/gpu"), "PersistentVolumeClaim")
    bad_pvc = copy.deepcopy(pvc)
    bad_pvc["spec"]["accessModes"] = "ReadWriteMany"
    assert core_errors(bad_pvc, K8S_VERSIONS[-1]) is not None


@pytest.mark.parametrize("folder", OVERLAYS)
def test_every_pod_and_container_is_locked_down(folder: str) -> None:
    for obj in ray_objects(folder):
        for label, template in pod_templates(obj):
            where = f"{folder} {obj['kind']} {label}"
            assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false", where
            pod = template["spec"]
            assert pod["automountServiceAccountToken"] is False, where
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["runAsUser"] > 0, where
            # With the above, what the `restricted` Pod Security Standard asks (Kubeflow profiles may enforce it).
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for container, _ in containers(template):
                at = f"{where} {container['name']}"
                sec = container["securityContext"]
                assert sec["allowPrivilegeEscalation"] is False, at
                assert sec["capabilities"]["drop"] == ["ALL"] and not sec["capabilities"].get("add"), at
                assert not sec.get("privileged"), at
                assert sec.get("runAsNonRoot", True) is True and sec.get("runAsUser", 1) > 0, at
                for bound in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{at} {bound}"


@pytest.mark.parametrize("folder", OVERLAYS)
def test_ray_containers_take_the_token_from_a_secret(folder: str) -> None:
    for obj in ray_objects(folder):
        cluster = cluster_spec(obj)
        assert cluster["authOptions"] == {"mode": "token", "secretName": TOKEN_SECRET["name"]}
        for label, template in pod_templates(obj):
            for container, is_init in containers(template):
                if is_init:
                    continue  # fetch-mnist talks to no Ray process and gets no token
                env = {e["name"]: e for e in container["env"]}
                at = f"{folder} {label} {container['name']}"
                assert env["RAY_AUTH_MODE"]["value"] == "token", at
                assert "value" not in env["RAY_AUTH_TOKEN"], at
                assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == TOKEN_SECRET, at


@pytest.mark.parametrize("folder", OVERLAYS)
def test_no_secret_is_written_in_a_manifest(folder: str) -> None:
    objs = render(folder)
    assert not of_kind(objs, "Secret")
    for obj in ray_objects(folder):
        for _, template in pod_templates(obj):
            for container, _ in containers(template):
                for env in container.get("env", []):
                    if any(word in env["name"] for word in ("TOKEN", "PASSWORD", "SECRET", "KEY")):
                        assert "value" not in env, f"{folder} {container['name']} {env['name']}"


@pytest.mark.parametrize("folder", ["base", "overlays/gpu"])
def test_rayjob_runs_the_full_sweep(folder: str) -> None:
    assert the_rayjob(folder)["spec"]["entrypoint"] == ENTRYPOINT


def test_cpu_rayjob_runs_the_same_command_with_a_smaller_preset() -> None:
    full, small = shlex.split(ENTRYPOINT), shlex.split(the_rayjob("overlays/cpu")["spec"]["entrypoint"])
    preset = full.index("--preset") + 1
    assert small[:preset] + small[preset + 1:] == full[:preset] + full[preset + 1:]
    assert small[preset] in ("smoke", "quick")


@pytest.mark.parametrize("folder", ["base", "overlays/gpu", "overlays/cpu"])
def test_a_rayjob_that_lost_its_head_is_retried_and_its_retry_continues_the_same_sweep(folder: str) -> None:
    """KubeRay retries a failed RayJob backoffLimit times, each on a new cluster and the same volume: the entrypoint
    names its sweep and continues it (--resume-or-start), with --name last, where the Kubeflow run puts its own."""
    spec = the_rayjob(folder)["spec"]
    assert spec["backoffLimit"] >= 1
    words = shlex.split(spec["entrypoint"])
    assert "--resume-or-start" in words and "--resume" not in words
    assert words[-2] == "--name" and words.count("--name") == 1
    sweep_args = sweep_cli.parse_args(words[3:])
    assert sweep_args.resume_or_start and sweep_args.name == words[-1]


@pytest.mark.parametrize("folder", ["base", "overlays/gpu", "overlays/cpu"])
def test_rayjob_cleans_up_and_has_a_deadline(folder: str) -> None:
    spec = the_rayjob(folder)["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["submitterPodTemplate"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("folder", ["base", "overlays/gpu", "overlays/cpu"])
def test_rayjob_that_never_starts_fails_long_before_its_active_deadline(folder: str) -> None:
    """An image that cannot be pulled or a failing fetch-mnist leaves a RayJob Initializing: KubeRay fails it
    after preRunningDeadlineSeconds instead of after the hours of activeDeadlineSeconds (docs/cluster.md)."""
    job = the_rayjob(folder)
    assert crd_errors(job) == []
    spec = job["spec"]
    pre_running = spec["preRunningDeadlineSeconds"]
    # Room for a GPU node scale-up and a cold pull of the CUDA image; a small share of the run's own deadline.
    assert isinstance(pre_running, int) and 600 <= pre_running <= 1800
    assert pre_running * 4 <= spec["activeDeadlineSeconds"]


def test_the_crd_checks_the_pre_running_deadline() -> None:
    """The field is the v1.7.0 CRD's own (a misspelling or a bad value is rejected, not silently dropped)."""
    good = the_rayjob("overlays/gpu")
    assert "preRunningDeadlineSeconds" in good["spec"] and crd_errors(good) == []
    for value in (0, "20m", 1200.5):
        bad = copy.deepcopy(good)
        bad["spec"]["preRunningDeadlineSeconds"] = value
        assert any(e.startswith("spec/preRunningDeadlineSeconds: ") for e in crd_errors(bad)), value
    typo = copy.deepcopy(good)
    typo["spec"]["preRunningDeadlineSecond"] = typo["spec"].pop("preRunningDeadlineSeconds")
    assert any("preRunningDeadlineSecond" in e for e in crd_errors(typo))


def worker_groups(obj: Obj) -> list[Obj]:
    return cluster_spec(obj)["workerGroupSpecs"]


def gpus(container: Obj) -> tuple[object, object]:
    return container["resources"]["requests"].get("nvidia.com/gpu"), container["resources"]["limits"].get(
        "nvidia.com/gpu")


def test_gpu_overlay_runs_several_gpu_workers_on_gpu_nodes() -> None:
    (group,) = worker_groups(the_rayjob("overlays/gpu"))
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] > 1
    assert gpus(group["template"]["spec"]["containers"][0]) == (1, 1)
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in group["template"]["spec"][
        "tolerations"]


def test_base_leaves_node_placement_to_the_overlays() -> None:
    (group,) = worker_groups(the_rayjob("base"))
    assert gpus(group["template"]["spec"]["containers"][0]) == (1, 1)
    for _, template in pod_templates(the_rayjob("base")):
        assert "tolerations" not in template["spec"] and "nodeSelector" not in template["spec"]


def test_cpu_overlay_asks_for_no_gpu_and_a_local_volume() -> None:
    for _, template in pod_templates(the_rayjob("overlays/cpu")):
        for container, _ in containers(template):
            assert gpus(container) == (None, None)
    (pvc,) = of_kind(render("overlays/cpu"), "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_results_data_and_weights_live_on_the_shared_volume(folder: str) -> None:
    objs = render(folder)
    (pvc,) = of_kind(objs, "PersistentVolumeClaim")
    # docs/cluster.md creates the volume alone with `-l app.kubernetes.io/component=results`.
    assert [o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "results"] == [pvc]
    if folder != "overlays/cpu":
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # head and workers on different nodes
    for obj in ray_objects(folder):
        for label, template in pod_templates(obj):
            if label == "submitter":
                continue  # only runs `ray job submit`
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            assert volumes["results"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
            main = template["spec"]["containers"][0]
            assert {"name": "results", "mountPath": RESULTS_MOUNT} in main["volumeMounts"]
            env = env_values(main)
            assert env["MNIST_DATA_DIR"].startswith(RESULTS_MOUNT + "/"), label
            assert env["TORCH_HOME"].startswith(RESULTS_MOUNT + "/"), label


def test_cluster_overlay_is_the_rayjob_cluster_kept_running() -> None:
    objs = render("overlays/cluster")
    (cluster,) = of_kind(objs, "RayCluster")
    job_cluster = the_rayjob("overlays/gpu")["spec"]["rayClusterSpec"]
    assert cluster["spec"]["headGroupSpec"] == job_cluster["headGroupSpec"]
    assert cluster["spec"]["rayVersion"] == job_cluster["rayVersion"]
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert group["template"] == job_cluster["workerGroupSpecs"][0]["template"]


def test_dashboard_service_reaches_the_cluster_head() -> None:
    objs = render("overlays/cluster")
    (cluster,) = of_kind(objs, "RayCluster")
    (service,) = of_kind(objs, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"ray.io/cluster": cluster["metadata"]["name"], "ray.io/node-type": "head"}
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8265
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"name": port["targetPort"], "containerPort": 8265} in head["ports"]


@pytest.mark.parametrize("folder", OVERLAYS)
def test_what_the_kuberay_operator_checks_beyond_the_schema(folder: str) -> None:
    """The rules in KubeRay's ValidateRayJobSpec / ValidateRayClusterSpec that touch fields we set."""
    for obj in ray_objects(folder):
        name = obj["metadata"]["name"]
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 47, name  # DNS-1035, RayJob max
        cluster = cluster_spec(obj)
        major, minor, *_ = (int(part) for part in cluster["rayVersion"].split("."))
        assert (major, minor) >= (2, 52), "authOptions token mode needs Ray 2.52 or later"
        for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
            # rayStartParams resources and the group's `resources` field must not both be set.
            assert not (set(group["rayStartParams"]) & {"num-cpus", "num-gpus", "memory", "resources"}
                        and group.get("resources"))
            assert group["template"]["spec"]["containers"][0]["name"].startswith("ray-")  # index 0 is Ray's
        for group in cluster["workerGroupSpecs"]:
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        if obj["kind"] == "RayJob":
            assert obj["spec"]["submissionMode"] == "K8sJobMode"  # the only mode that takes a submitter template


def quantity(text: str) -> float:
    """A Kubernetes memory quantity in bytes (the binary suffixes these manifests use)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(text[:-2]) * units[text[-2:]] if text[-2:] in units else float(text)


@pytest.mark.parametrize("folder", OVERLAYS)
def test_shared_memory_fits_rays_object_store(folder: str) -> None:
    """Ray puts its object store (30% of the memory limit) in /dev/shm only if /dev/shm is that large."""
    for obj in ray_objects(folder):
        for label, template in pod_templates(obj):
            if label == "submitter":
                continue
            volumes = {v["name"]: v for v in template["spec"]["volumes"]}
            main = template["spec"]["containers"][0]
            assert {"name": "dshm", "mountPath": "/dev/shm"} in main["volumeMounts"], label
            shm = quantity(volumes["dshm"]["emptyDir"]["sizeLimit"])
            assert shm >= 0.3 * quantity(main["resources"]["limits"]["memory"]), f"{folder} {label}"
