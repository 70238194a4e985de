"""The Kubeflow Pipelines entry compiles offline and launches exactly the gpu overlay's RayJob.

kfp cannot share the main venv (protobuf and google-* pins), so the compile runs in .venv-kfp, which
`make test` creates first (mk/deploy.mk). Run directly without it, the tests that need it skip, except under CI.
"""

import json
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.k8s_helpers import K8S, REPO, of_kind, pod_templates, render, the_rayjob
from tests.paths import venv_tool

pytestmark = pytest.mark.process  # the pipeline is compiled by .venv-kfp's python, a process of its own

KFP_PY = REPO / ".venv-kfp" / "bin" / "python"
PIPELINE = K8S / "kubeflow" / "pipeline.py"


# Runs the first step's function in .venv-kfp against a fake API server and a fake clock (each sleep moves it on).
# For each sequence of RayJob statuses KubeRay might report it prints, as JSON, what the step returned, the line
# it stopped with or what it raised, what it created, how often it read the RayJob and how long it waited. The
# last status repeats; "DELETED" stands for the RayJob being gone (404).
STEP_SCRIPT = r"""
import json, sys
from unittest import mock
sys.path.insert(0, "k8s/kubeflow")
import pipeline
from kubernetes.client.rest import ApiException

class FakeApi:
    def __init__(self, statuses):
        self.statuses, self.created, self.polls = list(statuses), [], 0
    def create_namespaced_persistent_volume_claim(self, namespace, body):
        raise ApiException(status=409)  # left by an earlier run
    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append([group, version, namespace, plural, body])
    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.polls += 1
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status == "DELETED":
            raise ApiException(status=404)
        return {"status": status}

manifests = json.dumps(pipeline.rendered_manifests())
results = []
for scenario in json.loads(sys.argv[1]):
    api, clock = FakeApi(scenario["statuses"]), [0.0]
    with mock.patch("kubernetes.config.load_incluster_config"), \
            mock.patch("kubernetes.client.CoreV1Api", return_value=api), \
            mock.patch("kubernetes.client.CustomObjectsApi", return_value=api), \
            mock.patch("builtins.open", mock.mock_open(read_data="team-a\n")), \
            mock.patch("time.monotonic", side_effect=lambda: clock[0]), \
            mock.patch("time.sleep", side_effect=lambda s: clock.__setitem__(0, clock[0] + s)):
        try:
            outcome = pipeline.run_rayjob.python_func(manifests=manifests, run_id="5F3A9C21-77aa-4e1b",
                                                      poll_seconds=scenario.get("poll_seconds", 1),
                                                      timeout_seconds=scenario.get("timeout_seconds", 60))
        except SystemExit as exc:
            outcome = {"exit": exc.code}
        except Exception as exc:  # anything else the step let out, reported rather than ending the script
            outcome = {"raised": f"{type(exc).__name__}: {exc}"}
    results.append({"outcome": outcome, "created": api.created, "polls": api.polls, "waited": clock[0]})
print(json.dumps(results))
"""


def kfp_python() -> str:
    return venv_tool(KFP_PY, "kfp-install")


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


RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "rayClusterName": "archsweep-5f3a9c21-x7k2p"}
INITIALIZING = {"jobDeploymentStatus": "Initializing", "rayClusterName": "archsweep-5f3a9c21-x7k2p"}
STEP_LINE_START = "RayJob team-a/archsweep-5f3a9c21 "


def deadlines() -> tuple[int, int]:
    """(preRunningDeadlineSeconds, activeDeadlineSeconds) of the RayJob the pipeline launches."""
    spec = the_rayjob("overlays/gpu")["spec"]
    return spec["preRunningDeadlineSeconds"], spec["activeDeadlineSeconds"]


def step_scenarios() -> dict[str, dict]:
    """Named sequences of RayJob statuses, each with the step's poll interval and overall timeout."""
    pre_running, active = deadlines()
    timeout = pre_running + active  # the pipeline's default (test_pipeline_waits_no_longer_than_the_deadlines)
    return {
        "succeeded": {"statuses": [{}, RUNNING, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]},
        "app_failed": {"statuses": [RUNNING, {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED",
                                              "reason": "AppFailed", "message": "boom"}]},
        # An image that cannot be pulled, or fetch-mnist failing: Initializing until KubeRay's deadline fails it.
        "never_started": {"poll_seconds": 30, "timeout_seconds": timeout, "statuses": [
            {}, INITIALIZING, INITIALIZING,
            {**INITIALIZING, "jobDeploymentStatus": "Failed", "reason": "PreRunningDeadlineExceeded",
             "message": f"RayJob did not reach Running within {pre_running} seconds"}]},
        # The same, under an operator that drops preRunningDeadlineSeconds (older than v1.6): Initializing for good.
        "never_started_no_verdict": {"poll_seconds": 30, "timeout_seconds": timeout, "statuses": [INITIALIZING]},
        "deleted": {"poll_seconds": 30, "timeout_seconds": timeout, "statuses": [INITIALIZING, "DELETED"]},
        # The submitter gave up (its Job hit its backoffLimit); its message spans lines.
        "submitter_failed": {"statuses": [RUNNING, {
            **RUNNING, "jobDeploymentStatus": "Failed", "jobStatus": "", "reason": "SubmissionFailed",
            "message": "Job submission has failed.\nTraceback (most recent call last):\n  ConnectionError: refused"}]},
        "runs_forever": {"poll_seconds": 60, "timeout_seconds": timeout, "statuses": [RUNNING]},
    }


@pytest.fixture(scope="module")
def steps() -> dict[str, dict]:
    """What run-rayjob did in each scenario of step_scenarios(): one .venv-kfp process for all of them."""
    scenarios = step_scenarios()
    done = subprocess.run([kfp_python(), "-c", STEP_SCRIPT, json.dumps(list(scenarios.values()))],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return dict(zip(scenarios, json.loads(done.stdout.splitlines()[-1]), strict=True))


def stop_line(result: dict) -> str:
    """The one line the step failed with (asserting that it failed, with exactly one line)."""
    assert isinstance(result["outcome"], dict) and "exit" in result["outcome"], result["outcome"]
    line = result["outcome"]["exit"]
    assert isinstance(line, str) and "\n" not in line and line.startswith(STEP_LINE_START), line
    return line


def test_run_rayjob_step_waits_for_kuberay_and_fails_with_the_job(steps: dict[str, dict]) -> None:
    succeeded, failed = steps["succeeded"], steps["app_failed"]
    assert succeeded["outcome"] == "archsweep-5f3a9c21" and succeeded["polls"] == 3
    ((group, version, namespace, plural, body),) = succeeded["created"]
    assert (group, version, namespace, plural) == ("ray.io", "v1", "team-a", "rayjobs")
    rayjob = the_rayjob("overlays/gpu")
    assert body["metadata"]["name"] == "archsweep-5f3a9c21"
    # The overlay's RayJob, its sweep named after it so that fetch-report finds this run's report.
    assert body["spec"]["entrypoint"] == rayjob["spec"]["entrypoint"].replace("archsweep-sweep", "archsweep-5f3a9c21")
    assert {**body["spec"], "entrypoint": rayjob["spec"]["entrypoint"]} == rayjob["spec"]

    line = stop_line(failed)
    assert line.startswith(STEP_LINE_START + "failed: deployment Failed, reason AppFailed, job FAILED, message 'boom'")
    assert "logs job/archsweep-5f3a9c21" in line


def init_container_logs() -> list[str]:
    """The kubectl command for each init container of the head (fetch-mnist), on the RayJob's cluster."""
    (head,) = [template for label, template in pod_templates(the_rayjob("overlays/gpu")) if label == "head"]
    names = [c["name"] for c in head["spec"]["initContainers"]]
    assert names == ["fetch-mnist"]
    return [f"kubectl -n team-a logs -l ray.io/cluster={RUNNING['rayClusterName']},ray.io/node-type=head -c {name}"
            for name in names]


def test_step_stops_with_kuberays_verdict_on_a_rayjob_that_never_started(steps: dict[str, dict]) -> None:
    pre_running, _ = deadlines()
    result = steps["never_started"]
    line = stop_line(result)
    assert line.startswith(STEP_LINE_START + "failed before it started: deployment Failed, "
                           "reason PreRunningDeadlineExceeded, job -, "
                           f"message 'RayJob did not reach Running within {pre_running} seconds'; ")
    # What to look at: the init containers' logs and the pods' image pulls.
    for command in init_container_logs():
        assert command in line
    assert "ImagePullBackOff" in line and "kubectl -n team-a describe pod -l ray.io/cluster=" in line
    # It stopped at KubeRay's verdict, without another poll.
    assert result["polls"] == 4 and result["waited"] == 3 * 30


def test_step_keeps_its_own_pre_running_clock(steps: dict[str, dict]) -> None:
    """Under an operator that ignores preRunningDeadlineSeconds the step still stops, shortly after it."""
    pre_running, active = deadlines()
    result = steps["never_started_no_verdict"]
    line = stop_line(result)
    assert line.startswith(STEP_LINE_START + f"has not started after preRunningDeadlineSeconds={pre_running} ")
    assert "deployment Initializing, reason -, job -, message '-'" in line
    for command in init_container_logs():
        assert command in line
    assert pre_running < result["waited"] <= pre_running + 120 + 30
    assert result["waited"] < active / 10


def test_step_stops_when_the_rayjob_is_deleted_under_it(steps: dict[str, dict]) -> None:
    result = steps["deleted"]
    line = stop_line(result)
    assert line.startswith(STEP_LINE_START + "was deleted while the step waited, last seen with: "
                           "deployment Initializing, reason -, job -, message '-'; ")
    assert result["polls"] == 2 and result["waited"] == 30


def test_step_puts_the_submitters_message_on_its_one_line(steps: dict[str, dict]) -> None:
    line = stop_line(steps["submitter_failed"])
    assert line.startswith(STEP_LINE_START + "failed: deployment Failed, reason SubmissionFailed, job -, message "
                           "'Job submission has failed. Traceback (most recent call last): ConnectionError: refused'; ")
    assert "kubectl -n team-a logs job/archsweep-5f3a9c21" in line


def test_step_waits_no_longer_than_its_timeout(steps: dict[str, dict]) -> None:
    pre_running, active = deadlines()
    result = steps["runs_forever"]
    line = stop_line(result)
    assert line.startswith(STEP_LINE_START + f"is still not finished after {pre_running + active} s")
    assert pre_running + active <= result["waited"] <= pre_running + active + 60


def test_pipeline_waits_no_longer_than_the_deadlines(compiled: tuple[dict, dict]) -> None:
    """Its default timeout is the RayJob's two deadlines: not hours more for a RayJob that never started."""
    spec, _ = compiled
    pre_running, active = deadlines()
    default = spec["root"]["inputDefinitions"]["parameters"]["timeout_seconds"]["defaultValue"]
    assert default == pre_running + active


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
