"""The Kubeflow Pipelines entry compiles offline and launches exactly the gpu overlay's RayJob.

kfp cannot share the main venv (protobuf and google-* pins), so the compile runs in .venv-kfp, which
`make test` creates first (mk/deploy.mk). Run directly without it, the tests that need it skip, except under CI.
"""

import json
import os
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.k8s_helpers import K8S, REPO, of_kind, render, the_rayjob

KFP_PY = REPO / ".venv-kfp" / "bin" / "python"
PIPELINE = K8S / "kubeflow" / "pipeline.py"


# Runs the first step's function in .venv-kfp against a fake API server: it prints, as JSON, what the step
# returned or raised and what it created, for each sequence of RayJob statuses KubeRay might report.
STEP_SCRIPT = r"""
import json, sys
from unittest import mock
sys.path.insert(0, "k8s/kubeflow")
import pipeline
from kubernetes.client.rest import ApiException

class FakeApi:
    def __init__(self, statuses):
        self.statuses, self.created = list(statuses), []
    def create_namespaced_persistent_volume_claim(self, namespace, body):
        raise ApiException(status=409)  # left by an earlier run
    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append([group, version, namespace, plural, body])
    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return {"status": self.statuses.pop(0)}

manifests = json.dumps(pipeline.rendered_manifests())
results = []
for statuses in json.loads(sys.argv[1]):
    api = FakeApi(statuses)
    with mock.patch("kubernetes.config.load_incluster_config"), \
            mock.patch("kubernetes.client.CoreV1Api", return_value=api), \
            mock.patch("kubernetes.client.CustomObjectsApi", return_value=api), \
            mock.patch("builtins.open", mock.mock_open(read_data="team-a\n")), mock.patch("time.sleep"):
        try:
            outcome = pipeline.run_rayjob.python_func(manifests=manifests, run_id="5F3A9C21-77aa-4e1b",
                                                      poll_seconds=1, timeout_seconds=60)
        except RuntimeError as exc:
            outcome = "raised: " + str(exc)
    results.append({"outcome": outcome, "created": api.created, "polls_left": len(api.statuses)})
print(json.dumps(results))
"""


def kfp_python() -> str:
    if not KFP_PY.is_file():
        message = f"{KFP_PY} missing: `make kfp-install` creates it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(KFP_PY)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """(pipeline spec, kubernetes platform spec) of a fresh compile."""
    kfp_python()
    out = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    done = subprocess.run([str(KFP_PY), str(PIPELINE), "--output", str(out)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    spec, platform = yaml.safe_load_all(out.read_text())
    return spec, platform["platforms"]["kubernetes"]


def task(spec: dict, name: str) -> dict:
    return spec["root"]["dag"]["tasks"][name]


def constant(spec: dict, task_name: str, param: str) -> object:
    return task(spec, task_name)["inputs"]["parameters"][param]["runtimeValue"]["constant"]


def test_pipeline_embeds_the_gpu_overlay_unchanged(compiled: tuple[dict, dict]) -> None:
    spec, _ = compiled
    assert spec["pipelineInfo"]["name"] == "archsweep-sweep"
    embedded = json.loads(constant(spec, "run-rayjob", "manifests"))
    assert embedded == list(render("overlays/gpu"))
    # Each run names its RayJob after the run, so runs never collide.
    assert constant(spec, "run-rayjob", "run_id") == "{{$.pipeline_job_uuid}}"


def test_report_comes_from_where_the_rayjob_writes_it(compiled: tuple[dict, dict]) -> None:
    spec, platform = compiled
    rayjob = the_rayjob("overlays/gpu")
    (pvc,) = of_kind(render("overlays/gpu"), "PersistentVolumeClaim")
    entrypoint = rayjob["spec"]["entrypoint"].split()
    output_dir = entrypoint[entrypoint.index("--output") + 1]
    results_dir = constant(spec, "fetch-report", "results_dir")
    # The sweep writes OUTPUT/<--name>/report.html; run-rayjob names the sweep after the RayJob it returns.
    assert results_dir == output_dir and constant(spec, "fetch-report", "report_file") == "report.html"
    assert task(spec, "fetch-report")["inputs"]["parameters"]["rayjob"]["taskOutputParameter"]["producerTask"] == (
        "run-rayjob")

    fetch = task(spec, "fetch-report")
    assert fetch["dependentTasks"] == ["run-rayjob"]
    outputs = spec["components"]["comp-fetch-report"]["outputDefinitions"]["artifacts"]
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    (mount,) = platform["deploymentSpec"]["executors"]["exec-fetch-report"]["pvcMount"]
    assert mount["mountPath"] == results_dir
    assert mount["pvcNameParameter"]["runtimeValue"]["constant"] == pvc["metadata"]["name"]


def test_steps_always_run_and_keep_istio_out(compiled: tuple[dict, dict]) -> None:
    spec, platform = compiled
    for name in ("run-rayjob", "fetch-report"):
        assert not task(spec, name)["cachingOptions"].get("enableCache"), name
        executor = platform["deploymentSpec"]["executors"][f"exec-{name}"]
        assert executor["podMetadata"]["annotations"]["sidecar.istio.io/inject"] == "false"


def test_run_rayjob_step_waits_for_kuberay_and_fails_with_the_job() -> None:
    running = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    scenarios = [
        [{}, running, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}],
        [running, {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "message": "boom"}],
    ]
    done = subprocess.run([kfp_python(), "-c", STEP_SCRIPT, json.dumps(scenarios)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    succeeded, failed = json.loads(done.stdout.splitlines()[-1])

    assert succeeded["outcome"] == "archsweep-5f3a9c21" and succeeded["polls_left"] == 0
    ((group, version, namespace, plural, body),) = succeeded["created"]
    assert (group, version, namespace, plural) == ("ray.io", "v1", "team-a", "rayjobs")
    rayjob = the_rayjob("overlays/gpu")
    assert body["metadata"]["name"] == "archsweep-5f3a9c21"
    # The overlay's RayJob, its sweep named after it so that fetch-report finds this run's report.
    assert body["spec"]["entrypoint"] == rayjob["spec"]["entrypoint"] + " --name archsweep-5f3a9c21"
    assert {**body["spec"], "entrypoint": rayjob["spec"]["entrypoint"]} == rayjob["spec"]

    assert failed["outcome"].startswith("raised: RayJob archsweep-5f3a9c21: job FAILED: boom")


def test_rbac_grants_what_the_first_step_calls() -> None:
    objs = render("kubeflow/rbac")
    for obj in objs:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    (role,) = of_kind(objs, "Role")
    (binding,) = of_kind(objs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("ray.io", "rayjobs", "create"), ("ray.io", "rayjobs", "get"), ("", "persistentvolumeclaims", "create")}
    assert needed <= granted
    assert not any(verb in ("delete", "*") for _, _, verb in granted)
