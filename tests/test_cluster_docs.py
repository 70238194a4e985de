"""The cluster commands in README.md and docs/cluster.md name things that exist: a person can paste them.

Without a cluster they cannot be run here, so each is checked against what it refers to: the overlays it
applies render, the objects it names are the rendered ones (or the ones KubeRay derives from them), the make
targets exist, and every `python -m jobs.sweep` line passes the sweep's own argument checks.
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from jobs import sweep
from tests.k8s_helpers import ENTRYPOINT, REPO, Obj, cluster_spec, of_kind, pod_templates, render, the_rayjob

DOCS = ("README.md", "docs/cluster.md")


def shell_lines(doc: str) -> list[str]:
    """The lines of the doc's ```bash blocks, continuations joined, comments dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (REPO / doc).read_text(), re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split(" # ")[0].strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def names(folder: str, kind: str) -> set[str]:
    return {obj["metadata"]["name"] for obj in of_kind(render(folder), kind)}


def all_rendered(kind: str) -> set[str]:
    return names("overlays/gpu", kind) | names("overlays/cpu", kind) | names("overlays/cluster", kind)


def head_containers(obj: Obj) -> set[str]:
    (head,) = [template for label, template in pod_templates(obj) if label == "head"]
    return {c["name"] for c in head["spec"]["containers"]}


def found(pattern: str, doc: str) -> list[str]:
    return [match for line in shell_lines(doc) for match in re.findall(pattern, line)]


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_have_cluster_commands(doc: str) -> None:
    assert any("kubectl" in line for line in shell_lines(doc))


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.process
def test_applied_folders_render(doc: str) -> None:
    folders = found(r"-k (k8s/\S+)", doc)
    for folder in folders:
        assert render(folder.removeprefix("k8s/").rstrip("/")), folder
    if doc == "README.md":
        assert {"k8s/overlays/gpu", "k8s/overlays/cluster", "k8s/kubeflow/rbac"} <= set(folders)


def named_objects(doc: str) -> list[tuple[str, str, set[str]]]:
    """(what, name, the names it may be) for every object a command of the doc names."""
    secrets = {cluster_spec(obj)["authOptions"]["secretName"]
               for folder in ("overlays/gpu", "overlays/cluster") for obj in render(folder)
               if obj["kind"] in ("RayJob", "RayCluster")}
    job = the_rayjob("overlays/gpu")
    patterns = {
        r"\brayjob ([a-z0-9-]+)\b": all_rendered("RayJob"),
        r"\bjob/([a-z0-9-]+)": all_rendered("RayJob"),  # KubeRay names the submitter Job after its RayJob
        r"\braycluster ([a-z0-9-]+)\b": all_rendered("RayCluster"),
        r"\bsvc/([a-z0-9-]+)\b(?!-)": all_rendered("Service"),
        r"\bsecret (?:generic )?([a-z0-9-]+)\b": secrets,
        r'"claimName": "([a-z0-9-]+)"': all_rendered("PersistentVolumeClaim"),
        r"-c ([a-z0-9-]+)": head_containers(job),
    }
    return [(pattern, name, allowed) for pattern, allowed in patterns.items() for name in found(pattern, doc)]


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.process
def test_named_objects_are_the_rendered_ones(doc: str) -> None:
    checked = named_objects(doc)
    for pattern, name, allowed in checked:
        assert name in allowed, f"{doc}: {name} ({pattern}) is none of {sorted(allowed)}"
    if doc == "README.md":  # the RayJob, its Job, the RayCluster, the dashboard, the token, the head container
        assert len({pattern for pattern, _, _ in checked}) >= 6


def test_the_rayjob_dashboard_service_is_the_one_kuberay_makes() -> None:
    """KubeRay names the RayJob's cluster `<rayjob>-<random>` and its head Service `<cluster>-head-svc`."""
    lines = shell_lines("README.md")
    assert any(re.search(r"jsonpath='\{\.status\.rayClusterName\}'", line) for line in lines)
    assert 'kubectl port-forward "svc/$CLUSTER-head-svc" 8265:8265' in lines


def make_targets(doc: str) -> list[str]:
    """`make X` in the doc's shell blocks and in its inline code (docs/cluster.md names its targets inline)."""
    inline = re.findall(r"`make ([a-z][a-z-]*)`", (REPO / doc).read_text())
    return sorted({*found(r"^make ([a-z][a-z-]*)", doc), *inline})


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.process
def test_make_targets_exist(doc: str) -> None:
    targets = make_targets(doc)
    assert targets, f"{doc} names no make target"
    done = subprocess.run(["make", "--no-print-directory", "-n", *targets], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, f"make {' '.join(targets)}: {done.stderr}"


def test_readme_submits_the_rayjob_command() -> None:
    commands = [line[line.index("python -m jobs.sweep"):] for line in shell_lines("README.md")
                if "python -m jobs.sweep" in line]
    assert ENTRYPOINT in commands
    for command in commands:
        args = sweep.parse_args(shlex.split(command)[3:])
        sweep.validate(args)  # raises UsageError on what the CLI would refuse (args: a SweepRequest)


def test_the_docs_resume_the_rayjobs_sweep_by_hand() -> None:
    """docs/cluster.md's resume by hand continues the RayJob's own sweep, OUTPUT/NAME of its entrypoint: both
    ways it gives (the RayJob applied again, and --resume on the RayCluster) name that folder."""
    words = shlex.split(ENTRYPOINT)
    folder = f"{words[words.index('--output') + 1]}/{words[words.index('--name') + 1]}"
    lines = shell_lines("docs/cluster.md")
    commands = [line[line.index("python -m jobs.sweep"):] for line in lines if "python -m jobs.sweep" in line]
    assert folder in [sweep.parse_args(shlex.split(command)[3:]).resume for command in commands]
    assert "kubectl delete rayjob archsweep-sweep" in lines
    assert any(line.startswith("kubectl apply -k k8s/overlays/") for line in lines)
