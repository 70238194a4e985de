"""The report's timeline: runs on lanes, the figure, and the cluster-busy figure, from synthetic records."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest
from matplotlib.colors import to_rgb

from tune.report.timeline import Run, assign_lanes, busy_text, caption, collect_runs, fig_timeline
from tune.sweep.record import Sweep
from tune.sweep.trials import TrialRecord

START = "2026-11-27T15:20:00+00:00"
COLOURS = {"cnn": matplotlib.colormaps["tab10"](0), "vit": matplotlib.colormaps["tab10"](1)}


def stamp(second: float) -> str:
    return f"2026-11-27T15:{20 + int(second) // 60:02d}:{second % 60:09.6f}+00:00"


def trial(model: str, status: str, start: float, end: float, **extra) -> TrialRecord:
    return TrialRecord.from_json({"model": model, "trial_id": f"{model}_{start:g}", "status": status,
                                  "started_at": stamp(start), "finished_at": stamp(end), "resources": {"CPU": 1.0}}
                                 | extra)


def retrain(started_at: str | None, finished_at: str | None, **resources: float) -> Run:
    """What collect_runs reads of a RunResult: when it ran and what it held."""
    return SimpleNamespace(started_at=started_at, finished_at=finished_at, resources=resources)


def sweep(**fields) -> Sweep:
    return Sweep(output=Path("."), models=[], **fields)


# ---- lanes -----------------------------------------------------------------------------------------------------

def test_lanes_on_a_hand_case():
    spans = [(0, 10), (5, 15), (10, 20), (12, 13), (0, 1)]
    # By start: (0,1)->0, (0,10)->1, (5,15) reuses 0 (free since 1), (10,20) reuses 1 (ends at 10 exactly),
    # (12,13) overlaps both, so a third lane.
    assert assign_lanes(spans) == [1, 0, 1, 2, 0]
    assert assign_lanes([]) == []
    assert assign_lanes([(0, 5), (5, 9), (9, 12)]) == [0, 0, 0]  # back to back: one lane


def test_overlapping_runs_never_share_a_lane_and_lanes_are_the_peak_concurrency():
    rng = random.Random(3)
    for _ in range(50):
        spans = [(s := rng.uniform(0, 100), s + rng.uniform(0.5, 30)) for _ in range(rng.randint(1, 40))]
        lanes = assign_lanes(spans)
        for i, (a, b) in enumerate(spans):
            for j, (c, d) in enumerate(spans[:i]):
                if a < d and c < b:
                    assert lanes[i] != lanes[j], (spans[i], spans[j])
        peak = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
        assert max(lanes) + 1 == peak


# ---- runs from the records ---------------------------------------------------------------------------------

def test_runs_from_trials_and_retrains_in_seconds_since_the_sweep_start():
    trials = [trial("cnn", "ok", 10, 40), trial("vit", "stopped", 12, 20), trial("vit", "failed", 21, 23),
              trial("cnn", "ok", 30, 50, finished_at=None),  # an older record: no end, so not drawn
              TrialRecord("cnn", "old", "ok")]
    finals = {"cnn": [retrain(stamp(45), stamp(90.5), CPU=2.0)],
              "vit": [retrain("2026-11-27T15:20:50", "2026-11-27T15:21:10")]}  # naive: UTC
    runs = collect_runs(sweep(started=START), trials, finals)
    assert [(r.model, r.kind, r.start, r.end) for r in runs] == [
        ("cnn", "ok", 10, 40), ("vit", "stopped", 12, 20), ("vit", "failed", 21, 23),
        ("cnn", "retrain", 45, 90.5), ("vit", "retrain", 50, 70)]
    lanes = [r.lane for r in runs]
    assert lanes[0] != lanes[1] and lanes[0] != lanes[2] and lanes[3] != lanes[4]
    assert runs[3].resources == {"CPU": 2.0} and runs[4].resources == {}
    # Without a usable sweep start, the first run starts at zero.
    assert collect_runs(sweep(started="not a time"), trials[:2], {})[0].start == 0


def test_without_timestamps_there_is_no_timeline():
    trials = [TrialRecord("cnn", "a", "ok", val_accuracy=0.9)]
    finals = {"cnn": [retrain(None, None)]}
    assert collect_runs(sweep(started=START), trials, finals) == []
    assert fig_timeline([], COLOURS) is None


# ---- the figure ------------------------------------------------------------------------------------------------

def test_figure_bars_colours_marks_and_legend():
    runs = collect_runs(sweep(started=START), [trial("cnn", "ok", 0, 30), trial("vit", "stopped", 5, 12),
                                               trial("vit", "failed", 6, 8)],
                        {"cnn": [retrain(stamp(31), stamp(60))]})
    fig = fig_timeline(runs, COLOURS)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(runs) == 4
    for bar, run in zip(bars, runs, strict=True):
        assert to_rgb(bar.get_facecolor()) == pytest.approx(to_rgb(COLOURS[run.model]))
        assert bar.get_x() == pytest.approx(run.start) and bar.get_width() == pytest.approx(run.end - run.start)
        assert bar.get_y() + bar.get_height() / 2 == pytest.approx(run.lane)
    hatches = {run.kind: bar.get_hatch() for bar, run in zip(bars, runs, strict=True)}
    assert hatches["ok"] is None and len({hatches["stopped"], hatches["failed"], hatches["retrain"]}) == 3
    assert len(ax.get_yticks()) == 3  # three runs overlap at t=6..8
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["cnn", "vit"]
    assert {"stopped early by ASHA", "failed"} <= set(legend) and any("retrain" in t for t in legend)
    assert ax.get_xlabel() == "seconds since the sweep's start"


def test_caption_counts_runs_and_names_requests():
    runs = [Run("cnn", "ok", 0, 5, {"CPU": 1.0, "GPU": 0.25, "memory": 2e9}), Run("cnn", "stopped", 0, 2, lane=1),
            Run("vit", "failed", 1, 3, {"CPU": 2.0}, lane=2), Run("vit", "retrain", 5, 9, {"CPU": 4.0})]
    text = caption(runs)
    assert text.startswith("3 search trials and 1 retrain, at most 3 at once.")
    # Ray's memory resource (bytes) is left out; a retrain's request is not a trial's.
    assert text.endswith("Each search trial held: cnn 1 CPU + 0.25 GPU; vit 2 CPUs.")
    same = [Run("cnn", "ok", 0, 5, {"CPU": 1.0}), Run("vit", "ok", 0, 5, {"CPU": 1.0}, lane=1)]
    assert caption(same).endswith("Each search trial held 1 CPU.")


# ---- cluster busy ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    ({"cluster_busy": 0.6449, "cluster_resources": {"CPU": 2.0}}, "cluster busy 64% of 2 CPUs"),
    ({"cluster_busy": 0.81, "cluster_resources": {"CPU": 16.0, "GPU": 1.0}}, "cluster busy 81% of 1 GPU"),
    ({"cluster_busy": 0.5, "cluster_resources": {"CPU": 8.0, "GPU": 4.0}}, "cluster busy 50% of 4 GPUs"),
    ({"cluster_busy": 0.5}, "cluster busy 50%"),
    ({"wall_time_s": 10.0}, None),
    ({"cluster_busy": None, "cluster_resources": {"CPU": 2.0}}, None),
])
def test_busy_text(fields, expected):
    assert busy_text(sweep(**fields)) == expected
