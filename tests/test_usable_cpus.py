"""Runs are sized by the CPUs this process may use (jobs/engine/train/cpus.py), not the host's count (issue 25, case 9):
under a real `taskset`, and on cgroup files and SLURM variables given as inputs."""

import os
import subprocess
import sys

import pytest

from jobs.engine.train.cpus import cgroup_quota_cpus, slurm_cpus, usable_cpus
from tests.paths import REPO


@pytest.mark.process
def test_taskset_one_core():
    proc = subprocess.run(["taskset", "-c", "0", sys.executable, "-c",
                           "from jobs.engine.train.cpus import usable_cpus; print(usable_cpus())"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "1", proc.stderr


def cgroup(tmp_path, membership: str, files: dict[str, str]):
    """A cgroup tree under tmp_path: FILES {relative path: text}, and /proc/self/cgroup's MEMBERSHIP lines."""
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    (tmp_path / "proc-cgroup").write_text(membership)
    return tmp_path, tmp_path / "proc-cgroup"


@pytest.mark.parametrize(("membership", "files", "cpus"), [
    # cgroup v2: half a CPU rounds up to one thread
    ("0::/job\n", {"job/cpu.max": "50000 100000\n"}, 1),
    # the tightest of the cgroup and its ancestors, 1.5 CPUs rounded up
    ("0::/slurm/job/step\n", {"slurm/job/step/cpu.max": "max 100000\n", "slurm/job/cpu.max": "150000 100000\n",
                               "slurm/cpu.max": "800000 100000\n"}, 2),
    # no quota anywhere
    ("0::/job\n", {"job/cpu.max": "max 100000\n"}, None),
    # a container: the path names the host's hierarchy, the root is the container's own
    ("0::/kubepods/pod1/abc\n", {"cpu.max": "100000 100000\n"}, 1),
    # cgroup v1's CFS quota (-1: none), the cpu controller mounted with cpuacct
    ("4:cpu,cpuacct:/docker/x\n2:memory:/docker/x\n",
     {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"}, 2),
    ("4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
])
def test_cgroup_quota(tmp_path, membership, files, cpus):
    assert cgroup_quota_cpus(*cgroup(tmp_path, membership, files)) == cpus


def test_the_smallest_limit_wins(tmp_path):
    root, proc = cgroup(tmp_path, "0::/job\n", {"job/cpu.max": "100000 100000\n"})
    assert usable_cpus(root, proc, {"SLURM_CPUS_ON_NODE": "8"}) == 1  # the quota, under any affinity
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(root, proc, {"SLURM_CPUS_PER_TASK": "1", "SLURM_CPUS_ON_NODE": "8"}) == 1  # SLURM's
    assert usable_cpus(root, proc, {}) == len(os.sched_getaffinity(0))  # no quota, no SLURM: the mask


@pytest.mark.parametrize(("environ", "cpus"), [
    ({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "16"}, 4),
    ({"SLURM_CPUS_ON_NODE": "3"}, 3),
    ({"SLURM_CPUS_PER_TASK": "", "SLURM_CPUS_ON_NODE": "2"}, 2),
    ({}, None),
])
def test_slurm_allocation(environ, cpus):
    assert slurm_cpus(environ) == cpus
