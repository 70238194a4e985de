"""What the search learned (tune/analysis/search_insights.py): per architecture, which hyperparameters mattered, every
trial in a parallel-coordinates figure, best values at the edge of their range, what the search cost in
resource-seconds and what ASHA's early stops saved; and every trial's validation accuracy against its training
time, so the figure carries information at every preset (a quick trial lasts one epoch)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune.analysis.comparison import fmt_accuracy
from tune.analysis.results import SweepResults
from tune.analysis.row import ComparisonRow
from tune.analysis.search_insights import (
    Importance,
    asha_savings,
    best_edge_flags,
    parallel_coordinates,
    param_importance,
    search_budget,
)
from tune.report.figures import Palette, png, short_number
from tune.report.parallel import draw_parallel_coordinates
from tune.sweep.record import Sweep
from tune.sweep.spaces import space_of
from tune.sweep.trials import TrialRecord

BAR_PX = 90  # the most important hyperparameter's bar, in pixels
FEW_TRIALS = 5  # below this many scored trials an edge flag is mostly chance


def spaces(sweep: Sweep) -> dict[str, dict[str, Any]]:
    """Each architecture's search space: the --space override sweep.json records, else tune/sweep/spaces.py's."""
    out = {}
    for model in sweep.models:
        try:
            out[model] = space_of(model, sweep.spaces)
        except KeyError:  # an architecture without a space of its own (a sweep of an older version)
            continue
    return out


# ---- every trial against its training time --------------------------------------------------------------------

def trial_curve(trial: TrialRecord) -> list[tuple[float, float]]:
    """(training seconds so far, validation accuracy %) at the end of each of the trial's epochs; with a
    history that lacks epoch times, the epoch number stands in for the seconds."""
    points, elapsed = [], 0.0
    timed = all(isinstance(h.get("epoch_time_s"), int | float) for h in trial.history)
    # Checks within an epoch (val_checks_per_epoch) carry the run's training seconds so far, not an epoch time.
    so_far = all(isinstance(h.get("train_time_s"), int | float) for h in trial.history)
    for h in sorted(trial.history, key=lambda h: h.get("epoch", 0)):
        if so_far:
            elapsed = float(h["train_time_s"])
        else:
            elapsed = elapsed + h["epoch_time_s"] if timed else float(h.get("epoch", len(points) + 1))
        if isinstance(h.get("val_accuracy"), int | float):
            points.append((elapsed, h["val_accuracy"] * 100))
    return points


def search_points(results: SweepResults) -> dict[str, list[tuple[float, float]]]:
    """Per architecture, every (seconds, val accuracy %) point the search figure draws: one per trial and epoch."""
    out: dict[str, list[tuple[float, float]]] = {}
    for trial in results.trials:
        out.setdefault(trial.model, []).extend(trial_curve(trial))
    return {m: points for m, points in out.items() if points}


def fig_search(results: SweepResults, order: list[str], colours: Palette) -> Figure | None:
    """Every trial as a line through its epochs (a dot when it ran one), validation accuracy against training
    seconds on a log axis; each architecture's chosen trial thick, trials ASHA stopped dashed."""
    timed = all(isinstance(h.get("epoch_time_s"), int | float) or isinstance(h.get("train_time_s"), int | float)
                for t in results.trials for h in t.history)
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = []
    for model in order:
        chosen = results.status(model).best_trial_id
        for trial in (t for t in results.trials if t.model == model):
            points = trial_curve(trial)
            if not points:
                continue
            best = trial.trial_id == chosen
            ax.plot(*zip(*points, strict=True), color=colours[model], marker="o", ms=5 if best else 3.5,
                    lw=2.2 if best else 1.0, ls="--" if trial.status == "stopped" else "-", alpha=1 if best else 0.6,
                    mec="black" if best else colours[model], zorder=3 if best else 2)
            if model not in drawn:
                drawn.append(model)
    if not drawn:
        return None
    if timed:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training time of the trial so far (s, log scale)")
    else:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("validation accuracy (%)")
    ax.margins(x=0.08, y=0.1)
    handles = [Line2D([], [], color=colours[m], marker="o", lw=1.5, label=m) for m in drawn]
    handles += [Line2D([], [], color="#555", marker="o", mec="black", lw=2.2, label="chosen trial"),
                Line2D([], [], color="#555", ls="--", lw=1.0, label="stopped by ASHA")]
    ax.legend(handles=handles, frameon=False, loc="lower right", fontsize=8)
    return fig


# ---- what the search learned, per architecture ----------------------------------------------------------------

def learned(results: SweepResults, rows: list[ComparisonRow]) -> dict[str, Any]:
    """The template's "What the search learned" card: a budget row per architecture (beside its test accuracy),
    and per architecture its importance, edge flags and parallel-coordinates figure."""
    space_by_model = spaces(results.sweep)
    accuracy = {r.model: r for r in rows}
    grid = results.sweep.search == "grid"
    budget_rows, blocks = [], []
    for model in [*accuracy, *(m for m in results.models if m not in accuracy)]:
        trials = [t for t in results.trials if t.model == model]
        if not trials:
            continue
        budget_rows.append(_budget_row(model, trials, accuracy.get(model)))
        space = space_by_model.get(model)
        if space is None:
            continue
        importance = param_importance(trials, space, model)
        flags = [f.sentence for f in best_edge_flags(trials, space, model, use_grid=grid)]
        data = parallel_coordinates(trials, space, model)
        figure = None
        if any(p is not None for line in data["lines"] for p in line["positions"]):
            width = min(9.0, max(6.4, 0.95 * len(data["axes"])))
            figure = png(draw_parallel_coordinates(data, width_in=width, height_in=2.8, dpi=100))
        top = max(importance.values.values(), default=0.0) or 1.0
        scored = sum(t.status != "failed" and t.val_accuracy is not None for t in trials)
        caveat = (f"With {scored} scored trial{'s' if scored != 1 else ''} the best value is largely chance: widen a "
                  "range once a larger search agrees." if flags and scored < FEW_TRIALS else "")
        blocks.append({"model": model, "flags": flags, "caveat": caveat, "figure": figure, "trials": len(trials),
                       "importance": [{"key": k, "share": f"{v:.0%}", "width": round(BAR_PX * v / top)}
                                      for k, v in importance.values.items()],
                       "importance_note": _importance_note(importance), "axes": ", ".join(a["key"] for a in
                                                                                         data["axes"][:-1])})
    return {"budget": budget_rows, "blocks": blocks, "any_stopped": any(r["stopped"] for r in budget_rows),
            "estimated": any(r["to_the_end"] not in ("—", "") for r in budget_rows)}


def _budget_row(model: str, trials: list[TrialRecord], row: ComparisonRow | None) -> dict[str, Any]:
    budget, saved = search_budget(trials, model), asha_savings(trials, model)
    held = " + ".join(f"{seconds:,.0f} {unit}·s" for seconds, unit in ((budget.cpu_s, "CPU"), (budget.gpu_s, "GPU"))
                      if seconds > 0)
    unit = f"{saved.resource}·s"
    to_the_end = "—"
    if saved.stopped and saved.to_the_end_s is not None:
        to_the_end = f"{saved.to_the_end_s:,.0f} {unit} (est.)"
    elif saved.stopped:
        to_the_end = "no finished trial to estimate from"
    return {"model": model, "accuracy": fmt_accuracy(row.test_accuracy, None) if row else "—",
            "budget": held or ("not recorded" if budget.untimed == budget.trials else "0 CPU·s"),
            "stopped": saved.stopped,
            "used": f"{saved.used_s:,.0f} {unit}" if saved.stopped and saved.untimed < saved.stopped else "—",
            "to_the_end": to_the_end}


def _importance_note(importance: Importance) -> str:
    if not importance.values:
        return f"No importance: {importance.reason}."
    how = {"fanova": "fANOVA", "ped-anova": "PED-ANOVA"}.get(importance.method, importance.method)
    note = f"{how} over {importance.n_trials} trials that ran to the end"
    return note + (f" ({importance.reason})." if importance.reason else ".")
