"""How many CPUs this process may use: the host's count is wrong under taskset, a container's quota or SLURM.

Ray counts the host's CPUs (os.cpu_count) for a node it starts, and torch sizes its thread pool the same way, so
a run allowed one core of two planned two one-CPU trials and two threads each. The limits read here, smallest wins:

- the affinity mask, os.sched_getaffinity(0): taskset, numactl, and a cgroup cpuset (the kernel narrows every
  task's mask to its cpuset's `cpuset.cpus.effective`; Linux's sched_setaffinity(2) and cgroup-v2 docs);
- a CFS bandwidth quota, cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD" when unlimited) of this process's
  cgroup and every ancestor (the kernel's Documentation/admin-guide/cgroup-v2.rst, "cpu" controller), or cgroup
  v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: unlimited); a quota of 1.5 CPUs rounds up to 2 threads,
  as Java's and Go's runtimes round a container's quota;
- SLURM's allocation: SLURM_CPUS_PER_TASK (set with --cpus-per-task), else SLURM_CPUS_ON_NODE (the CPUs of this
  job on this node; Slurm's sbatch(1) "OUTPUT ENVIRONMENT VARIABLES").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
SLURM_VARS = ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP,
                environ: Mapping[str, str] | None = None) -> int:
    """The CPUs this process may compute on, >= 1: the smallest of its affinity mask, its cgroup's CPU quota and
    its SLURM allocation (module docstring). The arguments point at other files and variables, for tests."""
    limits = [affinity_cpus(), cgroup_quota_cpus(cgroup_root, proc_cgroup),
              slurm_cpus(os.environ if environ is None else environ)]
    return max(1, min(limit for limit in limits if limit is not None))


def affinity_cpus() -> int:
    """The CPUs in this process's affinity mask (the host's count where the platform has no mask)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cgroup_quota_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """CPUs the tightest CFS quota of this process's cgroups allows (rounded up), None where none is set."""
    quotas = [quota for folder in cgroup_folders(cgroup_root, proc_cgroup)
              if (quota := read_quota(folder)) is not None]
    return math.ceil(min(quotas)) if quotas else None


def cgroup_folders(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup folders and their ancestors: v2 (the "0::PATH" line) and v1's cpu controller."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [cgroup_root]
    folders = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: one unified hierarchy
            base = cgroup_root
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own hierarchy
            base = cgroup_root / controllers
            if not base.is_dir():
                base = cgroup_root / "cpu"
        else:
            continue
        relative = Path(path.lstrip("/"))
        folders += [base / ancestor for ancestor in [relative, *relative.parents]]
    # Inside a container the cgroup path often names the host's hierarchy while the root is the container's own.
    return [*folders, cgroup_root]


def read_quota(folder: Path) -> float | None:
    """FOLDER's CFS quota in CPUs: cgroup v2 cpu.max, else v1 cpu.cfs_quota_us over cpu.cfs_period_us."""
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def slurm_cpus(environ: Mapping[str, str]) -> int | None:
    """CPUs SLURM gave this task: SLURM_CPUS_PER_TASK, else SLURM_CPUS_ON_NODE; None outside SLURM."""
    for name in SLURM_VARS:
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None
