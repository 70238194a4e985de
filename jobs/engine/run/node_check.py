"""Before any training: every node that will train has our stack at the pinned versions, and where the run asks
for a GPU, one that torch can use.

A cluster whose image lacked a package trained a whole sweep and failed at the report (optuna, pycocotools), or
fell back to another ONNX exporter without a word (onnxscript); a node that advertised a GPU torch could not use
ended inside Ray Train's NCCL setup with a traceback. One Ray task per alive node, pinned to it, answers both in
seconds. It runs in the job's runtime env, as the training does, and imports only Ray, packaging and the standard
library (torch only for the GPU question): it must answer on a node that lacks the rest of the stack.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from jobs.engine.errors import UsageError
from jobs.engine.run.cluster import wants_gpu

REQUIREMENTS = Path(__file__).resolve().parents[3] / "requirements.txt"  # shipped with a submitted job's working dir
CHECK_GPU_SHARE = 0.01  # a fraction of a card is enough for Ray to make one visible to the check, even a busy one
ANSWER_TIMEOUT_S = 600.0  # a node installing a runtime env's pip packages answers only after them


def pinned(path: Path | None = None) -> list[str]:
    """The requirement lines of PATH (default: REQUIREMENTS; "name[extras]==version"), comments and blank lines
    left out; none where it is absent, as in our image, which the Dockerfile built from it (the GPU check still
    runs there)."""
    path = REQUIREMENTS if path is None else path
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


@dataclass(frozen=True)
class Node:
    """A node of the cluster as ray.nodes() describes it: what a problem names it by, and what it offers."""

    node_id: str
    address: str
    hostname: str = ""
    cpus: float = 0.0
    gpus: float = 0.0

    @classmethod
    def from_ray(cls, node: dict[str, Any]) -> Node:
        """One entry of ray.nodes() (keys NodeID, NodeManagerAddress, NodeManagerHostname, Resources)."""
        resources = node.get("Resources") or {}
        return cls(node["NodeID"], node["NodeManagerAddress"], node.get("NodeManagerHostname") or "",
                   resources.get("CPU", 0.0), resources.get("GPU", 0.0))

    @property
    def label(self) -> str:
        return f"{self.hostname or self.address} ({self.address}, node {self.node_id[:8]})"


@dataclass(frozen=True)
class Mismatch:
    name: str
    pin: str
    found: str
    needed_by: str


@dataclass
class StackReport:
    """What one node's Python has of the pinned requirements. A pin is "name<specifier>"; `needed_by` is "" for a
    line of requirements.txt, "ray[tune]" for what an extra it names brings (a `pip install ray` lacks what Tune
    and Train import). `cuda`: torch.cuda.is_available() when CUDA is asked about, else None; `gpu_ids`: the GPU
    ids Ray gave the check."""

    missing: list[tuple[str, str]] = field(default_factory=list)  # (pin, needed_by)
    mismatched: list[Mismatch] = field(default_factory=list)
    cuda: bool | None = None
    gpu_ids: list[str] = field(default_factory=list)


def stack_report(requirements: list[str], cuda: bool) -> StackReport:
    """What this process has of REQUIREMENTS (pins of requirements.txt), and whether torch can use CUDA when CUDA
    is asked about."""
    from importlib import metadata

    from packaging.requirements import Requirement

    report = StackReport()

    def check(requirement: Requirement, needed_by: str) -> bool:
        pin = f"{requirement.name}{requirement.specifier}"
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            report.missing.append((pin, needed_by))
            return False
        # PEP 440: a pin without a local label accepts a local build of it (torch 2.14.1+cpu for ==2.14.1).
        if not requirement.specifier.contains(version, prereleases=True):
            report.mismatched.append(Mismatch(requirement.name, pin, version, needed_by))
        return True

    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if not check(requirement, "") or not requirement.extras:
            continue
        for text in metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            extras = [extra for extra in sorted(requirement.extras)
                      if dependency.marker is not None and "extra" in str(dependency.marker)
                      and dependency.marker.evaluate({"extra": extra})]
            if extras:
                check(dependency, f"{requirement.name}[{extras[0]}]")
    if cuda:
        try:
            import torch

            report.cuda = torch.cuda.is_available()
        except ImportError:  # reported as missing above
            pass
    report.gpu_ids = [str(gpu) for gpu in ray.get_gpu_ids()] if ray.is_initialized() else []
    return report


def training_nodes() -> list[Node]:
    """Alive nodes with CPUs or GPUs to train on (a head started with --num-cpus=0 trains nothing)."""
    nodes = [Node.from_ray(node) for node in ray.nodes() if node["Alive"]]
    return [node for node in nodes if node.cpus > 0 or node.gpus > 0]


def check_nodes(gpu: str, in_process: bool, requirements: list[str] | None = None,
                timeout_s: float = ANSWER_TIMEOUT_S) -> None:
    """Raise UsageError naming each node that lacks a pinned package or has another version of it, and, when GPU
    (--gpu auto|on|off) makes the run ask for GPUs (cluster.wants_gpu), each node with GPUs where
    torch.cuda.is_available() is False.

    IN_PROCESS: the cluster is the one this driver embedded, so its only node runs this very Python and the
    driver answers for it without a task. Otherwise one task per training node, num_cpus=0 and pinned to the
    node (with a sliver of a GPU where the GPU is checked: Ray hides every GPU from a task that asks for none)."""
    requirements = pinned() if requirements is None else requirements
    use_gpu = wants_gpu(gpu, ray.cluster_resources().get("GPU", 0))
    nodes = training_nodes()
    if in_process:
        local = ray.get_runtime_context().get_node_id()
        node = next((n for n in nodes if n.node_id == local), Node(local, "localhost", platform.node()))
        reports = [(node, stack_report(requirements, use_gpu and node.gpus > 0))]
    else:
        reports = ask_nodes(nodes, requirements, use_gpu, timeout_s)
    problems = [problem for node, report in reports for problem in node_problems(node, report)]
    if problems:
        raise UsageError(fix_hint(problems, reports))


def ask_nodes(nodes: list[Node], requirements: list[str], use_gpu: bool,
              timeout_s: float) -> list[tuple[Node, StackReport]]:
    """One stack_report task per node, pinned there; a node that does not answer in TIMEOUT_S is a UsageError."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(stack_report)
    refs = {}
    for node in nodes:
        cuda = use_gpu and node.gpus > 0
        options = {"num_cpus": 0, "num_gpus": CHECK_GPU_SHARE if cuda else 0, "max_retries": 0,
                   "scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}
        refs[probe.options(**options).remote(requirements, cuda)] = node
    done, pending = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    if pending:
        raise UsageError(f"no answer within {timeout_s:g} s from "
                         f"{', '.join(refs[ref].label for ref in pending)} to the check of its packages "
                         "and GPU: is the node busy, or installing a runtime env?")
    answers = []
    for ref in done:
        try:
            answers.append((refs[ref], ray.get(ref)))
        except ray.exceptions.RayError as exc:  # our code cannot even run there: no working dir, a broken Python
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"node {refs[ref].label}: the check of its packages could not run ({last}); "
                             "submit with --working-dir . and an image with the pinned stack") from None
    return answers


def node_problems(node: Node, report: StackReport) -> list[str]:
    label = node.label
    problems = []
    if report.missing:
        problems.append(f"node {label} lacks " + ", ".join(pin + for_extra(needed_by)
                                                           for pin, needed_by in report.missing))
    if report.mismatched:
        problems.append(f"node {label} has " + ", ".join(f"{m.name} {m.found} (pinned {m.pin}){for_extra(m.needed_by)}"
                                                         for m in report.mismatched))
    if report.cuda is False:
        problems.append(f"node {label}: Ray offers GPU {', '.join(report.gpu_ids) or '(none visible)'} but "
                        "torch.cuda.is_available() is False there (an NVIDIA driver too old for this CUDA, or no "
                        "device plugin); fix the node, or run with --gpu off")
    return problems


def for_extra(needed_by: str) -> str:
    return f" (for {needed_by})" if needed_by else ""


def fix_hint(problems: list[str], reports: list[tuple[Node, StackReport]]) -> str:
    """The problems in one line, and how to give the cluster the pinned packages."""
    wanted = sorted({pin for _, report in reports for pin, _ in report.missing}
                    | {m.pin for _, report in reports for m in report.mismatched})
    text = "; ".join(problems)
    # Ray itself cannot come from a runtime env: the node runs the Ray of its image.
    pip = [pin for pin in wanted if not pin.startswith("ray=")]
    for pin in set(wanted) - set(pip):
        text += f". Ray comes with the node's image: use one with {pin} (rayproject/ray:{pin.split('==')[-1]})"
    if pip:
        env = json.dumps({"working_dir": ".", "pip": pip})
        text += (f". The cluster's Python needs requirements.txt at its pins: build its image from the Dockerfile, "
                 f"or pass them with the job: ray job submit --runtime-env-json '{env}' ...")
    return text
