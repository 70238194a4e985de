"""Kubeflow Pipelines entry: a run launches the gpu overlay's RayJob, waits for it, and keeps report.html.

`make pipeline` compiles it offline (kfp lives in .venv-kfp) to dist/archsweep-pipeline.yaml; upload that
file in the Kubeflow Pipelines UI or with `kfp pipeline upload`. The RayJob is the one `kubectl apply -k
k8s/overlays/gpu` would create, rendered here at compile time and embedded as a constant, so the pipeline
and the manifests cannot drift apart. docs/cluster.md has the setup (token Secret, RBAC in rbac/).
"""

# No `from __future__ import annotations`: kfp reads the components' type hints as real types.
import argparse
import json
import subprocess
from pathlib import Path

import yaml
from kfp import compiler, dsl, kubernetes
from kfp.dsl.graph_component import GraphComponent

REPO = Path(__file__).resolve().parents[2]
OVERLAY = "k8s/overlays/gpu"
RESULTS_PVC = "archsweep-results"
RESULTS_DIR = "/results"
# Each run's sweep gets the run's RayJob name as its folder (`--name`), under the entrypoint's `--output`: two runs
# at once never share a folder, and the report step reads its own run's page, not whichever sweep is latest.
REPORT_FILE = "report.html"
# The steps only talk to the API server and copy a file: a stock Python image is enough. The client's
# version is the one kfp itself installs (requirements-kfp.txt).
STEP_IMAGE = "python:3.11-slim"
KUBERNETES_CLIENT = "kubernetes==30.1.0"
NO_ISTIO = ("sidecar.istio.io/inject", "false")


def rendered_manifests(overlay: str = OVERLAY) -> list[dict]:
    """The overlay as `kubectl apply -k` would send it."""
    out = subprocess.run(["kubectl", "kustomize", str(REPO / overlay)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@dsl.component(base_image=STEP_IMAGE, packages_to_install=[KUBERNETES_CLIENT])
def run_rayjob(manifests: str, run_id: str, poll_seconds: int, timeout_seconds: int) -> str:
    """Create the results volume if missing and this run's RayJob, then wait until KubeRay says it ended.

    Returns the RayJob's name. Unless the Ray job SUCCEEDED, the step fails with one line in its log: the RayJob,
    its deployment status, KubeRay's reason and message, and what to look at. It also stops, without waiting out
    `timeout_seconds`, when the RayJob has not started within its preRunningDeadlineSeconds (and a grace) or is
    deleted under it.
    """
    import json
    import time

    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    config.load_incluster_config()
    with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
        namespace = f.read().strip()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    rayjob = None
    for obj in json.loads(manifests):
        if obj["kind"] == "PersistentVolumeClaim":
            try:
                core.create_namespaced_persistent_volume_claim(namespace, obj)
            except ApiException as exc:
                if exc.status != 409:  # 409: kept from an earlier run, with its MNIST and weight caches
                    raise
        elif obj["kind"] == "RayJob":
            rayjob = obj
        else:
            raise ValueError(f"unexpected {obj['kind']} in the embedded manifests")
    # One RayJob per run: a finished RayJob stays (status, events) after its cluster is gone, so a fixed
    # name would collide with the previous run.
    name = f"archsweep-{run_id.lower()[:8]}"
    rayjob["metadata"]["name"] = name
    # The run's own sweep: the entrypoint's --name (its last flag) becomes the run's; a retry of this RayJob
    # continues that sweep (--resume-or-start), and no other run's.
    rayjob["spec"]["entrypoint"] = rayjob["spec"]["entrypoint"].rsplit(" --name ", 1)[0] + f" --name {name}"
    custom.create_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", rayjob)
    print(f"created RayJob {namespace}/{name}; follow it with: kubectl -n {namespace} get rayjob {name} -w")

    # KubeRay fails a RayJob that has not reached Running within this (reason PreRunningDeadlineExceeded). The step
    # keeps its own clock too, a grace later, in case the operator is older than v1.6 and dropped the field.
    pre_running = rayjob["spec"].get("preRunningDeadlineSeconds")
    pre_running_grace = 120
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    init_containers = [c["name"] for c in head.get("initContainers", [])]
    kubectl = f"kubectl -n {namespace}"

    def one_line(text: object) -> str:
        """KubeRay's and Ray's messages may hold a traceback: the step's verdict stays on one line."""
        words = " ".join(str(text).split())
        return words if len(words) <= 400 else words[:400] + "..."

    def stop(what: str, status: dict, check: str) -> None:
        """Fail the step with one line (SystemExit: the line alone, no traceback)."""
        raise SystemExit(f"RayJob {namespace}/{name} {what}: deployment {status.get('jobDeploymentStatus') or '-'}, "
                         f"reason {status.get('reason') or '-'}, job {status.get('jobStatus') or '-'}, "
                         f"message {one_line(status.get('message') or '-')!r}; {check}")

    def never_started_check(status: dict) -> str:
        pods = f"-l ray.io/cluster={status.get('rayClusterName') or '<status.rayClusterName>'}"
        logs = "".join(f"{kubectl} logs {pods},ray.io/node-type=head -c {c}; " for c in init_containers)
        return (f"check the init container logs ({logs.rstrip('; ') or 'none'}) and the image pulls and scheduling "
                f"of the Ray pods ({kubectl} describe pod {pods}: ErrImagePull, ImagePullBackOff, "
                f"Init:CrashLoopBackOff, FailedScheduling)")

    started = time.monotonic()
    deadline = started + timeout_seconds
    status: dict = {}
    ran = False  # seen Running (or past it) at least once
    while True:
        try:
            obj = custom.get_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs", name)
        except ApiException as exc:
            if exc.status == 404:
                stop("was deleted while the step waited, last seen with", status,
                     f"its events say more while they last: {kubectl} get events "
                     f"--field-selector involvedObject.name={name}")
            raise
        status = obj.get("status") or {}
        deployment = status.get("jobDeploymentStatus")
        ran = ran or deployment in ("Running", "Complete") or bool(status.get("jobStatus"))
        reason = f", reason {status['reason']}" if status.get("reason") else ""
        print(f"{name}: deployment {deployment}, job {status.get('jobStatus')}{reason}", flush=True)
        if deployment in ("Complete", "Failed"):
            break
        now = time.monotonic()
        if pre_running and not ran and now - started > pre_running + pre_running_grace:
            stop(f"has not started after preRunningDeadlineSeconds={pre_running} (+{pre_running_grace} s), and "
                 "KubeRay has not failed it (an operator older than v1.6 ignores the field)", status,
                 f"it is left as it is; {never_started_check(status)}")
        if now > deadline:
            stop(f"is still not finished after {timeout_seconds} s", status,
                 f"it is left as it is; check {kubectl} describe rayjob {name}")
        time.sleep(poll_seconds)
    if status.get("jobStatus") == "SUCCEEDED" and deployment == "Complete":
        return name
    if status.get("reason") == "PreRunningDeadlineExceeded" or not ran:
        stop("failed before it started", status, never_started_check(status))
    if status.get("reason") == "SubmissionFailed":
        stop("failed", status, f"check the submitter's log ({kubectl} logs job/{name}) and "
             f"{kubectl} describe rayjob {name}")
    stop("failed", status, f"check the sweep's log ({kubectl} logs job/{name}) and {kubectl} describe rayjob {name}")
    return name  # not reached: stop() raises


@dsl.component(base_image=STEP_IMAGE)
def fetch_report(rayjob: str, results_dir: str, report_file: str, report: dsl.Output[dsl.HTML]) -> None:
    """Copy the run's comparison page from its sweep folder on the volume into the run's artifacts (KFP UI)."""
    import shutil
    from pathlib import Path

    source = Path(results_dir) / rayjob / report_file
    if not source.is_file():
        raise FileNotFoundError(f"{source}: RayJob {rayjob} succeeded but left no report there")
    shutil.copyfile(source, report.path)


def build_pipeline(manifests: list[dict]) -> GraphComponent:
    """The pipeline with these manifests embedded; its default timeout follows the RayJob's own deadlines."""
    (rayjob,) = [obj for obj in manifests if obj["kind"] == "RayJob"]
    # KubeRay fails a RayJob that has not started after preRunningDeadlineSeconds and one not finished after
    # activeDeadlineSeconds (both counted from when it takes the RayJob up): the step never waits longer than both.
    timeout = rayjob["spec"]["preRunningDeadlineSeconds"] + rayjob["spec"]["activeDeadlineSeconds"]

    @dsl.pipeline(name="archsweep-sweep", description="The full architecture sweep as a KubeRay RayJob, "
                  "with report.html as an output artifact.")
    def sweep(poll_seconds: int = 30, timeout_seconds: int = timeout) -> None:
        job = run_rayjob(manifests=json.dumps(manifests), run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                         poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
        report = fetch_report(rayjob=job.output, results_dir=RESULTS_DIR, report_file=REPORT_FILE)
        # A cached step would hand back an old report without running anything.
        for task in (job, report):
            task.set_caching_options(False)
            kubernetes.add_pod_annotation(task, *NO_ISTIO)
        kubernetes.mount_pvc(report, pvc_name=RESULTS_PVC, mount_path=RESULTS_DIR)

    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "dist" / "archsweep-pipeline.yaml")
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(rendered_manifests()), str(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
