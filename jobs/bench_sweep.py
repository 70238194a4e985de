"""`python -m jobs.bench_sweep` (`make bench-sweep`): a sweep under load leaves nothing behind.

A smoke sweep of cnn with many trials (40 by default) on the local Ray, in this process so that the driver's
own memory can be watched: its resident size after the 5th and after the last finished trial, and afterwards
the cluster's available resources against its totals and any placement group or actor still alive. Exit code 1
when the memory grew more than 10% or anything was left behind; the figures go to stdout as JSON and, with
--json, to a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from jobs.engine.errors import ArgumentParser, run_cli

SMALL = ["--preset", "smoke", "--set", "train_limit=256", "--set", "val_limit=128", "--set", "test_limit=200",
         "--set", "epochs=1"]
# Ray's own cluster-wide actors: created once by the first Ray Train run, reused by every later run, and holding
# no CPU, GPU or memory (resources_held would show it): they are not something a trial left behind.
RAY_SINGLETONS = {"_AutoscalingCoordinatorActor"}


class MemoryAtTrials(threading.Thread):
    """Samples the driver's resident memory each time the count of finished trials under OUTPUT passes a mark."""

    def __init__(self, marks: list[int], output: Path) -> None:
        super().__init__(daemon=True)
        self.marks, self.output, self.seen, self.stop = sorted(marks), output, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            finished = finished_trials(self.output)
            for mark in self.marks:
                if finished >= mark and mark not in self.seen:
                    self.seen[mark] = resident_mb()


def finished_trials(output: Path) -> int:
    """How many trials under OUTPUT have ended, by the stamps the sweep writes in each trial's folder when it ends
    (tune/sweep/trial_times.py); a stamp being written is counted at the next look."""
    from tune.sweep.trial_times import TIMES_FILE

    ended = 0
    for path in output.rglob(TIMES_FILE):
        try:
            ended += "finished_at" in json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    return ended


def resident_mb() -> float:
    """This process's resident memory now (Linux /proc; the peak that `resource` reports would hide a drop)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def leftovers(settle_s: float = 30.0) -> dict[str, Any]:
    """What the sweep left on the cluster, after giving Ray time to reap finished actors and groups."""
    import ray
    from ray.util.state import list_actors, list_placement_groups

    deadline = time.monotonic() + settle_s
    while True:
        total, free = ray.cluster_resources(), ray.available_resources()
        held = {k: total[k] - free.get(k, 0.0) for k in ("CPU", "GPU", "memory") if k in total
                and abs(total[k] - free.get(k, 0.0)) > 1e-6}
        groups = [g.placement_group_id for g in list_placement_groups() if g.state != "REMOVED"]
        actors = [a.class_name for a in list_actors(filters=[("state", "=", "ALIVE")])
                  if a.class_name not in RAY_SINGLETONS]
        if (not held and not groups and not actors) or time.monotonic() > deadline:
            return {"resources_held": held, "placement_groups": groups, "actors_alive": actors}
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m jobs.bench_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="trials of the cnn search (default: 40)")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MNIST_DATA_DIR)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    from jobs.sweep import main as sweep

    marks = [min(5, args.samples), args.samples]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as output:
        watcher = MemoryAtTrials(marks, Path(output))
        watcher.start()
        code = sweep(["--models", "cnn", *SMALL, "--samples", str(args.samples), "--output", output,
                      *(["--data-dir", args.data_dir] if args.data_dir else [])])
        wall = time.perf_counter() - started
        trials = json.loads((Path(output) / "latest" / "trials.json").read_text())
    watcher.stop.set()
    left = leftovers()
    first, last = (watcher.seen.get(mark) for mark in marks)
    growth = (last / first - 1) if first and last else None
    figures = {"samples": args.samples, "trials_recorded": len(trials), "sweep_exit_code": code,
               "wall_s": round(wall, 1), "driver_rss_mb": {str(m): round(v, 1) for m, v in watcher.seen.items()},
               "driver_rss_growth": None if growth is None else round(growth, 4), **left}
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = (code == 0 and len(trials) == args.samples and growth is not None and growth <= 0.10
          and not any(left.values()))
    print("bench-sweep: " + ("OK" if ok else "FAILED") + f" ({len(trials)} trials in {wall:.0f} s, driver memory "
          f"{'n/a' if growth is None else f'{growth:+.1%}'} from trial {marks[0]} to {marks[1]})")
    return 0 if ok else 1


if __name__ == "__main__":
    run_cli(main)
