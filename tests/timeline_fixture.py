"""When each run of a synthetic sweep (tests/sweep_fixture) ran: the fields a sweep records for the timeline.

`stamp_timeline(folder)` adds `started_at`, `finished_at` and `resources` to every trial in trials.json and every
final/<model>/seed<k>/result.json, and `cluster_busy`, `cluster_resources` and `wall_time_s` to sweep.json, as if
`slots` runs at a time shared the cluster: search trials first, in trials.json's order, then the retrains.
"""

from __future__ import annotations

import heapq
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime.fromisoformat("2025-11-23T16:00:00+00:00")
SLACK_S = 1.5  # between one run's end and the next one's start on a freed slot, as a scheduler leaves


def stamp_timeline(folder: Path, slots: int = 2, cpus: float = 2.0) -> dict[str, Any]:
    """Returns the updated sweep.json."""
    trials = json.loads((folder / "trials.json").read_text())
    results = sorted(folder.glob("final/*/seed*/result.json"))
    finals = [json.loads(path.read_text()) for path in results]
    # A trial lasts longer the more epochs it ran; one that failed at once lasts a few seconds.
    durations = [8.0 + 12.0 * t["epochs_run"] for t in trials] + [r["wall_time_s"] for r in finals]
    free = [(0.0, slot) for slot in range(slots)]
    held = 0.0
    end_of_sweep = 0.0
    for record, seconds in zip(trials + finals, durations, strict=True):
        start, slot = heapq.heappop(free)
        record.update(started_at=(START + timedelta(seconds=start)).isoformat(),
                      finished_at=(START + timedelta(seconds=start + seconds)).isoformat(),
                      resources={"CPU": 1.0})
        heapq.heappush(free, (start + seconds + SLACK_S, slot))
        held += seconds
        end_of_sweep = max(end_of_sweep, start + seconds)
    (folder / "trials.json").write_text(json.dumps(trials, indent=1))
    for path, record in zip(results, finals, strict=True):
        path.write_text(json.dumps(record, indent=1))
    sweep = json.loads((folder / "sweep.json").read_text())
    sweep.update(wall_time_s=end_of_sweep + 5.0, cluster_resources={"CPU": cpus},
                 cluster_busy=held / ((end_of_sweep + 5.0) * cpus))
    (folder / "sweep.json").write_text(json.dumps(sweep, indent=1))
    return sweep
