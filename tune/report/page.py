"""OUTPUT/report.html: one self-contained page (inline CSS, figures as base64 PNG) that reads at a glance.

The verdicts in "What this means" are computed from the numbers here, never written by hand, so the page
cannot claim more than the results support. This module computes findings and figures; the page's markup is
the Jinja2 template tune/report/templates/report.html.j2.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune.analysis.comparison import (
    SweepResults,
    display_rows,
    fmt_accuracy,
    fmt_config,
    fmt_number,
    records,
    shown_columns,
)
from tune.analysis.significance import N_RESAMPLES
from tune.report import calibration as report_calibration
from tune.report import statistics as report_statistics
from tune.report.cost import cost_section
from tune.report.errors import detection_canvases, disagreements, error_grids
from tune.report.figures import STYLE, colours, error_bars, over_seeds, png, short_number
from tune.report.predictions import SweepPredictions, sweep_predictions
from tune.report.robustness import robustness
from tune.report.search import fig_search, learned
from tune.report.sections import SectionInputs, render_inputs
from tune.report.statistics import Statistics
from tune.report.timeline import busy_text, caption, collect_runs, fig_timeline
from tune.report.words import brief, names_text, singular
from tune.sweep.record import Sweep
from tune.sweep.trials import TrialRecord

NEAR_BEST_POINTS = 0.5  # "as good as the best" for the cheapest-model verdict, in accuracy points
TERMINAL_COLUMNS = 100  # the printed summary's line length
BRIEF_CHARS = 90  # a failure's reason in the printed summary; report.html says it in full


# ---- findings: the numbers the verdicts rest on ---------------------------------------------------------------

@dataclass
class Findings:
    ok: list[dict[str, Any]]  # rows of trained models, most accurate first
    failed: list[dict[str, Any]]
    front: list[str] = field(default_factory=list)  # Pareto front of accuracy against train time, fastest first
    predictions: SweepPredictions = field(default_factory=lambda: SweepPredictions({}, {}))
    stats: Statistics | None = None  # every pair and every seed (tune/report/statistics.py)
    trials: list[TrialRecord] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.ok[0] if self.ok else None

    @property
    def runner_up(self) -> dict[str, Any] | None:
        return self.ok[1] if len(self.ok) > 1 else None

    def per_second(self) -> dict[str, Any] | None:
        timed = [r for r in self.ok if (r["train_time_s"] or 0) > 0]
        return max(timed, key=lambda r: r["accuracy_per_train_s"]) if timed else None

    def cheapest_near_best(self) -> dict[str, Any] | None:
        if not self.best:
            return None
        floor = self.best["test_accuracy"] - NEAR_BEST_POINTS / 100
        near = [r for r in self.ok if r["test_accuracy"] >= floor and r["train_time_s"] is not None]
        return min(near, key=lambda r: r["train_time_s"]) if near else None


def findings(results: SweepResults, table: pd.DataFrame, n_resamples: int = N_RESAMPLES) -> Findings:
    rows = records(table)
    ok = [r for r in rows if r["status"] == "ok" and r["test_accuracy"] is not None]
    front = [r["model"] for r in sorted(ok, key=lambda r: r["train_time_s"] or 0) if r["pareto"]]
    found = Findings(ok=ok, failed=[r for r in rows if r["status"] != "ok"], front=front, trials=results.trials)
    found.predictions = sweep_predictions(results.output, {r["model"]: results.finals.get(r["model"], []) for r in ok})
    if ok:
        found.stats = report_statistics.compute([r["model"] for r in ok], found.predictions, n_resamples)
    return found


def what_this_means(f: Findings, page: bool = False) -> list[list[str]]:
    """The verdict as paragraphs of sentences (the ranking, whether it is real, the cost, what failed); **name**
    marks what the HTML shows in bold. PAGE: for report.html, where each failure's reason is said once, under
    Failures, so these sentences only point there; else (the command line) each failure is said briefly."""
    best, second = f.best, f.runner_up
    if best is None:
        ranking = ["No architecture finished training, so there is nothing to compare."]
        real: list[str] = []
    else:
        line = f"**{best['model']}** is the most accurate: {_pct(best)} mean test accuracy{_spread(best)}"
        if second:
            gap = (best["test_accuracy"] - second["test_accuracy"]) * 100
            line += f", {gap:.2f} points ahead of **{second['model']}** ({_pct(second)})"
        ranking = [line + "."]
        real = report_statistics.verdict(f.stats, best["model"], second["model"] if second else None)
    cost = _cost_sentences(f) if len(f.ok) > 1 else []
    return [p for p in (ranking, real, cost, _failure_sentences(f, page)) if p]


def _failure_sentences(f: Findings, page: bool) -> list[str]:
    """What could not be trained (models sharing a brief reason said together) and which search trials failed."""
    out: list[str] = []
    if f.failed and page:
        names = names_text(f"**{r['model']}**" for r in f.failed)
        out.append(f"{names} could not be trained; why is under Failures below.")
    elif f.failed:
        briefly: dict[str, list[str]] = {}
        for r in f.failed:
            briefly.setdefault(brief(reason(r), BRIEF_CHARS), []).append(r["model"])
        out += [f"{names_text(models)} could not be trained: {why}; report.html's Failures section has the full "
                "message." for why, models in briefly.items()]
    crashed = [r for r in f.ok if r["failed_trials"]]
    if crashed:
        count = sum(r["failed_trials"] for r in crashed)
        names = ", ".join(f"{r['model']} {r['failed_trials']} of {r['trials']}" for r in crashed)
        out.append(f"{count} search trial{'s' if count > 1 else ''} of trained models failed ({names}); "
                   "the best configurations were chosen from the rest.")
    elif f.ok and not f.failed:
        out.append("Every architecture and every search trial trained.")
    return out


def reason(row: dict[str, Any]) -> str:
    """Why a model could not be trained, without the model's name that the message may already start with."""
    text = (row.get("reason") or "").strip()
    prefix = re.compile(rf"^\s*{re.escape(str(row['model']))}\s*:\s*")
    while prefix.match(text):
        text = prefix.sub("", text, count=1)
    return text or "no reason was recorded"


def _cost_sentences(f: Findings) -> list[str]:
    best = f.best
    assert best is not None
    if f.front == [best["model"]]:
        # Best and fastest at once: accuracy-per-second and "cheapest near the best" would only repeat it.
        return [f"**{best['model']}** is also the fastest to train, so it alone is on the Pareto front of accuracy "
                "against training time: there is no trade-off to make."]
    names = ", ".join(f"**{m}**" for m in f.front)
    out = [f"On the Pareto front of accuracy against training time (no other model is both more accurate and "
           f"faster): {names}."]
    fast = f.per_second()
    if fast:
        out.append(f"**{fast['model']}** gives the most accuracy per second of training "
                   f"({_pct(fast)} in {fmt_number(fast['train_time_s'], 1, ' s')}).")
    cheap = f.cheapest_near_best()
    if cheap and cheap["model"] != best["model"]:
        gap = (best["test_accuracy"] - cheap["test_accuracy"]) * 100
        ratio = best["train_time_s"] / cheap["train_time_s"] if cheap["train_time_s"] else math.inf
        times = [fmt_number(r["train_time_s"], 1, " s") for r in (cheap, best)]
        out.append(f"The cheapest model within {NEAR_BEST_POINTS} points of the best is **{cheap['model']}** "
                   f"({gap:.2f} points behind, {ratio:.1f}× faster to train: {times[0]} against {times[1]}).")
    elif cheap:
        out.append(f"No model within {NEAR_BEST_POINTS} points of {best['model']} trains faster, so its extra "
                   "training time is the price of the best accuracy.")
    return out


def plain(paragraphs: list[list[str]], width: int = TERMINAL_COLUMNS) -> str:
    """The verdict for a terminal: a paragraph per theme, a blank line between, each wrapped to WIDTH columns (names
    and numbers are never split)."""
    return "\n\n".join(textwrap.fill(" ".join(s.replace("**", "") for s in p), width, break_long_words=False,
                                       break_on_hyphens=False) for p in paragraphs)


def _pct(row: dict[str, Any]) -> str:
    return fmt_accuracy(row["test_accuracy"], None)


def _spread(row: dict[str, Any]) -> str:
    if row["seeds"] == 1 or row["test_accuracy_std"] is None:
        return " from a single seed"
    return f" over {row['seeds']} seeds (± {row['test_accuracy_std'] * 100:.2f} points)"


# ---- figures ------------------------------------------------------------------------------------------------

def fig_tradeoff(f: Findings, colours: dict[str, Any], x: str, xlabel: str, front: bool) -> str:
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for r in f.ok:
        on_front = front and r["model"] in f.front
        ax.errorbar(r[x], r["test_accuracy"] * 100, yerr=(r["test_accuracy_std"] or 0) * 100, fmt="o", ms=9 if on_front
                    else 7, color=colours[r["model"]], mec="black" if on_front else "white", mew=1.5, capsize=3,
                    zorder=3)
        ax.annotate(r["model"], (r[x], r["test_accuracy"] * 100), xytext=(7, 5), textcoords="offset points",
                    fontsize=9)
    if front and len(f.front) > 1:  # a one-model front is just its outlined point
        pts = sorted((r[x], r["test_accuracy"] * 100) for r in f.ok if r["model"] in f.front)
        xs, ys = zip(*pts, strict=True)
        ax.step(xs, ys, where="post", ls="--", color="#444", lw=1.2, label="Pareto front", zorder=2)
        ax.legend(loc="lower right", frameon=False)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(short_number))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.margins(x=0.15, y=0.15)
    return png(fig)


def fig_confusion(results: SweepResults, f: Findings) -> str | None:
    mats = [(r["model"], np.array(runs[0].confusion_matrix)) for r in f.ok
            if (runs := results.finals.get(r["model"])) and runs[0].confusion_matrix]
    if not mats:
        return None
    cols = len(mats) if len(mats) <= 4 else 3
    rows = math.ceil(len(mats) / cols)
    fig = Figure(figsize=(3.3 * cols, 3.3 * rows), layout="constrained")
    errors = [m.astype(float) for _, m in mats]
    for e in errors:
        np.fill_diagonal(e, np.nan)
    # One colour scale for all models, so the same shade means the same number of errors everywhere.
    norm = Normalize(0, max(1.0, max(np.nanmax(e) for e in errors)))
    cmap = matplotlib.colormaps["Reds"].with_extremes(bad="#e8edf3")
    for i, ((model, m), e) in enumerate(zip(mats, errors, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(e, cmap=cmap, norm=norm)
        ax.grid(False)
        ax.spines[:].set_visible(False)
        for (t, p), count in np.ndenumerate(m):
            if t == p or count:
                dark = t != p and count > norm.vmax * 0.6
                # Cell labels sit inside the axes; leaving them out of the layout saves most of the render time.
                ax.text(p, t, str(count), ha="center", va="center", fontsize=5.5 if t == p else 6.5,
                        color="white" if dark else ("#555" if t == p else "black"), in_layout=False)
        ax.set_title(f"{model} — {int(m.sum() - np.trace(m))} errors", fontsize=9)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.tick_params(labelsize=7, length=0)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    return png(fig)


def fig_per_class_f1(results: SweepResults, f: Findings) -> str | None:
    rows = [(r["model"], np.mean([run.per_class_f1 for run in results.finals.get(r["model"], [])
                                  if run.per_class_f1], axis=0))
            for r in f.ok if any(run.per_class_f1 for run in results.finals.get(r["model"], []))]
    if not rows:
        return None
    data = np.array([v for _, v in rows])
    fig = Figure(figsize=(7.2, 0.5 * len(rows) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    low = min(float(data.min()), 0.999)
    image = ax.imshow(data, cmap="YlGnBu", vmin=low, vmax=1.0, aspect="auto")
    for (i, j), value in np.ndenumerate(data):
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=7.5,
                color="white" if value > low + 0.6 * (1 - low) else "black", in_layout=False)
    ax.grid(False)
    ax.spines[:].set_visible(False)
    ax.set_xticks(range(10), [str(d) for d in range(10)])
    ax.set_yticks(range(len(rows)), [m for m, _ in rows])
    ax.set_xlabel("digit")
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, label="F1", shrink=0.9)
    return png(fig)


# ---- page: what the template lays out ------------------------------------------------------------------------

TEMPLATES = Path(__file__).parent / "templates"
# Autoescaping everywhere: model names, reasons and configurations come from files a sweep wrote, never as markup.
PAGE = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
PAGE.filters["thousands"] = lambda n: f"{n:,}"


def render_report(results: SweepResults, table: pd.DataFrame, found: Findings | None = None) -> str:
    """report.html of a sweep: FOUND (its findings) when the caller has them already, else computed here."""
    f = found if found is not None else findings(results, table)
    palette = colours(results.models)
    runs = collect_runs(results.sweep, results.trials, results.finals)
    order = [r["model"] for r in f.ok]
    with matplotlib.rc_context(STYLE):
        timeline = fig_timeline(runs, palette)
        figures = {
            "pareto": fig_tradeoff(f, palette, "train_time_s", "training time of the final run (s, log scale)", True)
            if f.ok else None,
            "params": fig_tradeoff(f, palette, "params", "parameters (log scale)", False) if f.ok else None,
            "curves": fig_search(results, [*order, *(m for m in results.models if m not in order)], palette),
            "confusion": fig_confusion(results, f),
            "f1": fig_per_class_f1(results, f),
            "timeline": png(timeline) if timeline else None,
        }
        trust = {"statistics": report_statistics.section(f.stats), "learned": learned(results, f.ok + f.failed),
                 "errors": {"grids": error_grids(order, f.predictions),
                            "disagree": disagreements(f.stats, f.predictions),
                            "canvases": detection_canvases(order, f.predictions)},
                 "calibration": report_calibration.calibration(f.ok, f.predictions, palette),
                 "robustness": robustness(f.ok, results, palette)}
        more = render_inputs(SectionInputs(f.ok, f.predictions, palette))  # tune/report/sections.py
    sweep = results.sweep
    return PAGE.get_template("report.html.j2").render(
        preset=str(sweep.preset), meta=_meta(sweep), cards=_cards(f),
        verdict=[emphasis(" ".join(p)) for p in what_this_means(f, page=True)], table=_table(table),
        search=_search_rows(table), figures=figures, size_caption=_size_caption(f), bars=error_bars(f.ok),
        per_seed=over_seeds(f.ok), timeline_caption=caption(runs) if runs else "",
        failures=_failures(f), env=_env(results), **trust,
        cost=cost_section(results, table), more_sections=more)


def emphasis(text: str) -> list[tuple[str, bool]]:
    """Text as (piece, bold) pairs: what_this_means marks names **like this** for the page to show in bold."""
    return [(piece, i % 2 == 1) for i, piece in enumerate(re.split(r"\*\*(.+?)\*\*", text)) if piece]


def _size_caption(f: Findings) -> str:
    sized = [r for r in f.ok if r["params"]]
    if not sized or f.best is None:
        return ""
    small, best = min(sized, key=lambda r: r["params"]), f.best
    text = f"The most accurate model, {best['model']}, has {fmt_number(best['params'])} parameters"
    if small["model"] == best["model"]:
        return text + "; it is also the smallest."
    gap = (best["test_accuracy"] - small["test_accuracy"]) * 100
    ratio = best["params"] / small["params"]
    return (text + f", {ratio:.1f}× as many as the smallest, {small['model']} ({fmt_number(small['params'])}), "
            f"which is {gap:.2f} points behind.")


def _cards(f: Findings) -> list[tuple[str, str, str]]:
    """The summary's key, value and subtitle cards."""
    cards: list[tuple[str, str, str]] = []
    if f.best is None:
        return cards
    best = f.best
    if best:
        cards.append(("Most accurate", best["model"], fmt_accuracy(best["test_accuracy"], best["test_accuracy_std"])))
    top = f.stats.top if f.stats else None
    if top is not None and top.a == best["model"]:
        cards.append(("Top-two gap", "significant" if top.separated else "not significant",
                      f"McNemar p = {report_statistics.p_text(top.p_holm)} (Holm) vs {top.b}"))
    chance = f.stats.of(best["model"]) if f.stats and f.best else None
    if chance is not None and chance.p_best is not None:
        cards.append(("Chance it is the best", report_statistics.share(chance.p_best),
                      f"of {chance.over_images.n_resamples:,} bootstrap resamples"))
    cheap = f.cheapest_near_best()
    if cheap:
        cards.append((f"Cheapest within {NEAR_BEST_POINTS} pts", cheap["model"],
                      f"{fmt_number(cheap['train_time_s'], 1, ' s')} of training"))
    if f.failed:
        cards.append(("Could not train", ", ".join(r["model"] for r in f.failed), "see Failures below"))
    return cards


def _table(table: pd.DataFrame) -> dict[str, Any] | None:
    """Performance per model; the search's side (trials, best config) is a second table, so both fit the page.

    Its columns are the compared RunResult fields the report shows (jobs/engine/run_result.py), mAP@.5 and mAP
    sharing one, then the seeds."""
    shown, rows = display_rows(table), records(table)
    if not shown:
        return None
    for cells in shown:
        if "mAP" in cells:
            both = f"{cells['mAP@.5']} / {cells['mAP']}"
            cells["mAP@.5 / mAP"] = "—" if both == "— / —" else both
    headings = [how.heading for _, how in shown_columns(table, report=True)]
    headings = [("mAP@.5 / mAP" if h == "mAP@.5" else h) for h in headings if h != "mAP"]
    metrics = [h for h in [*headings, "Seeds"] if h in shown[0]]
    out = []
    for i, (cells, row) in enumerate(zip(shown, rows, strict=True)):
        ok = row["status"] == "ok"
        # A failed model's reason spans the metric columns, where numbers would otherwise be dashes.
        out.append({"model": row["model"], "pareto": row["pareto"], "ok": ok, "status": row["status"],
                    "cells": [cells[h] for h in metrics], "reason": cells["Status"],
                    "css": "best" if i == 0 and ok else ("" if ok else "failed")})
    return {"metrics": metrics, "rows": out}


def _search_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    return [{"model": row["model"], "trials": fmt_number(row["trials"]), "failed": fmt_number(row["failed_trials"]),
             "best_val": fmt_accuracy(row["best_val_accuracy"], None), "config": fmt_config(row["best_config"])}
            for row in records(table)]


def _failures(f: Findings) -> dict[str, Any] | None:
    """Each failure once: a model that could not be trained with its reason, and the failed search trials with
    theirs."""
    crashed = [r for r in f.ok + f.failed if r["failed_trials"]]
    if not f.failed and not crashed:
        return None
    return {"models": [(r["model"], reason(r)) for r in f.failed],
            "trials": [(r["model"], f"{r['failed_trials']} of {r['trials']} search trials failed: "
                        + "; ".join(f"{error}{f' (×{count})' if count > 1 else ''}"
                                    for error, count in _errors(f, r["model"]).items()))
                       for r in f.ok if r["failed_trials"]]}


def _errors(f: Findings, model: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for trial in f.trials:
        if trial.model == model and trial.status == "failed":
            key = (trial.error or "no error recorded").strip()
            found[key] = found.get(key, 0) + 1
    return found


def _meta(sweep: Sweep) -> list[str]:
    parts = [f"preset {sweep.preset}",
             f"{sweep.search} search, {sweep.samples} sample{'s' if sweep.samples != 1 else ''} per model",
             f"{sweep.seeds} seed{'s' if sweep.seeds != 1 else ''} per final model"]
    wall = sweep.wall_time_s
    if isinstance(wall, int | float) and wall > 0:
        minutes = wall / 60
        busy = busy_text(sweep)
        parts.append(f"{minutes:.1f} min wall time" if minutes < 10 else f"{minutes:.0f} min wall time")
        if busy:
            parts[-1] += f", {busy}"
    if sweep.finished:
        parts.append(f"finished {_when(sweep.finished)}")
    return parts


def _env(results: SweepResults) -> str:
    """Versions and host, the device the final runs trained on, and what search trials and retrains actually held
    (their recorded `resources`); sweep.json's worker plan for a one-worker run is left out, as no trial ran so."""
    sweep, env = results.sweep, results.sweep.env or {}
    versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "torchvision", "ray", "python", "host") if env.get(k))
    finals = [run for runs in results.finals.values() for run in runs]
    devices = sorted({singular(str(run.env.get("device"))) for run in finals if run.env.get("device")})
    text = "Environment: " + (versions or "not recorded") + "."
    if devices:
        text += f" Final runs trained on {' and '.join(devices)}."
    held = [(what, _held(records)) for what, records in (("Each search trial", results.trials),
                                                        ("each retrain", finals))]
    said = [f"{what} held {amount}" for what, amount in held if amount]
    if said:
        text += f" {'; '.join(said)}."
    text += "".join(f" {line}" for line in step_fallbacks(results))
    return text + f" Sweep started {_when(sweep.started)}, finished {_when(sweep.finished)}."


def step_fallbacks(results: SweepResults) -> list[str]:
    """One sentence per final run whose captured CUDA step failed and which trained with the eager step instead
    (result.json's `step_fallback`, jobs/engine/train/static_step.py): its times are the eager step's."""
    return [f"{model} (seed {seed}) trained with the eager step: the captured CUDA step's "
            f"{str(run.step_fallback).rstrip('.')}."
            for model, runs in results.finals.items() for seed, run in enumerate(runs) if run.step_fallback]


def _held(runs: list[Any]) -> str:
    """"1 CPU", "2 CPUs + 1 GPU", or "1 CPU or 2 CPUs" when runs held different amounts; "" when none recorded."""
    asks = []
    for run in runs:
        amounts = run.resources or {}
        ask = " + ".join(f"{amounts[u]:g} {u}{'s' if amounts[u] > 1 else ''}" for u in ("CPU", "GPU")
                         if isinstance(amounts.get(u), int | float) and amounts[u] > 0)
        if ask and ask not in asks:
            asks.append(ask)
    return " or ".join(asks)


def _when(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(stamp)
