"""Where the sweep's time went: every search trial and final retrain as a bar from its start to its end.

Reads `started_at`, `finished_at` and `resources` from trials.json and final/<model>/seed<k>/result.json, and
`cluster_busy` and `cluster_resources` from sweep.json. Sweeps written before these fields existed have none of
them; then there is no timeline and no busy figure, and nothing fails.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tune.report.figures import Palette
from tune.sweep.resource_usage import HeldRun, busy_resource, parse_time
from tune.sweep.trials import TrialRecord

if TYPE_CHECKING:
    from tune.sweep.record import Sweep

@dataclass(frozen=True)
class BarStyle:
    label: str
    hatch: str | None
    edgecolor: str
    alpha: float


# How a bar shows how its run ended; a retrain is a final run of the best configuration, not a search trial.
STYLES = {
    "ok": BarStyle("search trial", None, "white", 0.9),
    "stopped": BarStyle("stopped early by ASHA", "////", "#333333", 0.55),
    "failed": BarStyle("failed", "xxxx", "#b3261e", 0.55),
    "retrain": BarStyle("retrain (final run, best configuration)", "....", "black", 1.0),
}
LANE_HEIGHT_IN = 0.26  # inches per lane, so a 16-lane sweep stays readable and a 2-lane one stays short
MAX_LANES_HEIGHT_IN = 8.0  # a cluster running a hundred trials at once gets thinner lanes, not a metre-long figure


@dataclass
class Run:
    model: str
    kind: str  # "ok", "stopped", "failed" (search trials) or "retrain"
    start: float  # seconds since the sweep's start
    end: float
    resources: dict[str, float] = field(default_factory=dict)
    lane: int = 0


def assign_lanes(spans: list[tuple[float, float]]) -> list[int]:
    """A lane per span, in the spans' order: greedily by start time, each span takes the lowest lane free at its
    start, so overlapping spans never share a lane and the number of lanes is the most that ran at once."""
    lanes = [0] * len(spans)
    busy: list[tuple[float, int]] = []  # (end, lane) of spans still running
    free: list[int] = []
    for index in sorted(range(len(spans)), key=lambda i: spans[i]):
        start, end = spans[index]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (end, lane))
        lanes[index] = lane
    return lanes


def collect_runs(sweep: Sweep, trials: list[TrialRecord], finals: dict[str, list[HeldRun]]) -> list[Run]:
    """Every trial and retrain that recorded when it ran, on lanes, in seconds since the sweep's start."""
    stamped = [(t.model, t.status if t.status in STYLES else "ok", t) for t in trials]
    stamped += [(model, "retrain", run) for model, runs in finals.items() for run in runs]
    timed = []
    for model, kind, record in stamped:
        start, end = parse_time(record.started_at), parse_time(record.finished_at)
        if start and end and end >= start:
            timed.append((str(model), kind, start, end, record.resources))
    if not timed:
        return []
    origin = min(start for _, _, start, _, _ in timed)
    sweep_start = parse_time(sweep.started)
    if sweep_start and sweep_start <= origin:
        origin = sweep_start
    runs = [Run(model, kind, (start - origin).total_seconds(), (end - origin).total_seconds(),
                resources if isinstance(resources, dict) else {})
            for model, kind, start, end, resources in timed]
    for run, lane in zip(runs, assign_lanes([(r.start, r.end) for r in runs]), strict=True):
        run.lane = lane
    return runs


def fig_timeline(runs: list[Run], colours: Palette) -> Figure | None:
    """Lanes top to bottom, bars coloured by architecture and styled by how the run ended."""
    if not runs:
        return None
    lanes = max(r.lane for r in runs) + 1
    fig = Figure(figsize=(9.0, 1.9 + min(LANE_HEIGHT_IN * lanes, MAX_LANES_HEIGHT_IN)), layout="constrained")
    ax = fig.add_subplot()
    for run in runs:
        style = STYLES[run.kind]
        ax.barh(run.lane, max(run.end - run.start, 0.0), left=run.start, height=0.78,
                color=colours.get(run.model, "#999999"), alpha=style.alpha, hatch=style.hatch,
                edgecolor=style.edgecolor, linewidth=0.9 if run.kind == "ok" else 1.2)
    ax.set_ylim(lanes - 0.5, -0.5)
    ax.set_yticks(range(lanes), [str(lane + 1) for lane in range(lanes)], fontsize=7 if lanes > 12 else 8)
    ax.set_ylabel("lane")
    ax.set_xlabel("seconds since the sweep's start")
    ax.set_xlim(left=0)
    ax.grid(axis="y", visible=False)
    models = [m for m in colours if any(r.model == m for r in runs)]
    kinds = [k for k in STYLES if any(r.kind == k for r in runs)]
    handles = [Patch(facecolor=colours[m], label=m) for m in models]
    handles += [Patch(facecolor="#d5d9de", hatch=STYLES[k].hatch, edgecolor=STYLES[k].edgecolor,
                      label=STYLES[k].label) for k in kinds]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False, fontsize=8)
    return fig


def busy_text(sweep: Sweep) -> str | None:
    """"cluster busy 64% of 2 CPUs": GPUs when the cluster has them, else CPUs; None when not recorded."""
    busy, total = sweep.cluster_busy, sweep.cluster_resources or {}
    if not isinstance(busy, int | float) or not isinstance(total, dict):
        return None
    unit = busy_resource(total)
    amount = total.get(unit)
    if not isinstance(amount, int | float) or amount <= 0:
        return f"cluster busy {busy:.0%}"
    return f"cluster busy {busy:.0%} of {_amount(amount, unit)}"


def _amount(amount: float, unit: str) -> str:
    """"2 CPUs", "1 GPU", "0.25 GPU"."""
    return f"{amount:g} {unit}{'s' if amount > 1 else ''}"


def held_text(resources: Mapping[str, float]) -> str:
    """What a run held, "1 CPU" or "2 CPUs + 0.25 GPU"; "" when it recorded neither. CPUs and GPUs only: Ray's
    memory resource is in bytes and would drown the shares."""
    return " + ".join(_amount(amount, name) for name in ("CPU", "GPU")
                      if isinstance(amount := resources.get(name), int | float) and amount > 0)


def caption(runs: list[Run]) -> str:
    trials = sum(r.kind != "retrain" for r in runs)
    retrains = len(runs) - trials
    lanes = max(r.lane for r in runs) + 1
    return (f"{trials} search trial{'s' if trials != 1 else ''} and {retrains} retrain{'s' if retrains != 1 else ''}, "
            f"at most {lanes} at once. Each bar is one run from its start to its end; runs that overlap in time get "
            "separate lanes. Colour: architecture; hatching: stopped early by ASHA (////), failed (xxxx, red edge), "
            "retrain of the best configuration (dots, black edge)." + _requests(runs))


def _requests(runs: list[Run]) -> str:
    """What a search trial of each architecture asked the cluster for, e.g. " Each trial held: cnn 1 CPU"."""
    held: dict[str, list[str]] = {}
    for run in runs:
        if run.kind != "retrain" and run.resources:
            ask = held_text(run.resources)
            if ask and ask not in held.setdefault(run.model, []):
                held[run.model].append(ask)
    if not held:
        return ""
    if len({ask for asks in held.values() for ask in asks}) == 1:
        return f" Each search trial held {next(iter(held.values()))[0]}."
    return " Each search trial held: " + "; ".join(f"{m} {' or '.join(asks)}" for m, asks in held.items()) + "."
