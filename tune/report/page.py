"""OUTPUT/report.html: one self-contained page (inline CSS, figures as base64 PNG) that reads at a glance.

This module puts the page together from the findings (tune/report/findings.py) and each section's module; the
markup is the Jinja2 template tune/report/templates/report.html.j2, which reads the comparison's rows
(tune/analysis/row.py ComparisonRow) through the views built here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib
import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from tune.analysis.comparison import Comparison, display_rows, fmt_accuracy, fmt_config, fmt_number
from tune.analysis.results import SweepResults
from tune.report import calibration as report_calibration
from tune.report import statistics as report_statistics
from tune.report.cost import cost_section
from tune.report.errors import detection_canvases, disagreements, error_grids
from tune.report.figures import STYLE, colours, error_bars, over_seeds, png
from tune.report.findings import NEAR_BEST_POINTS, Findings, reason, what_this_means
from tune.report.robustness import robustness
from tune.report.scatter import accuracy_scatter
from tune.report.search import fig_search, learned
from tune.report.sections import SectionInputs, render_inputs
from tune.report.timeline import busy_text, caption, collect_runs, fig_timeline, held_text
from tune.report.words import singular
from tune.sweep.record import Sweep
from tune.sweep.resource_usage import HeldRun

TEMPLATES = Path(__file__).parent / "templates"
# Autoescaping everywhere: model names, reasons and configurations come from files a sweep wrote, never as markup.
PAGE = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
PAGE.filters["thousands"] = lambda n: f"{n:,}"


@dataclass(frozen=True)
class TableRow:
    """A row of the comparison table: the model, its cells (in the table's metric columns) and how it ended."""

    model: str
    pareto: bool
    ok: bool
    status: str
    cells: list[str]
    reason: str
    css: str  # "best", "failed" or ""


@dataclass(frozen=True)
class Table:
    metrics: list[str]
    rows: list[TableRow]


@dataclass(frozen=True)
class SearchRow:
    model: str
    trials: str
    failed: str
    best_val: str
    config: str


@dataclass(frozen=True)
class Failures:
    """Each failure once: (model, why) of the models that could not be trained and of their failed trials."""

    models: list[tuple[str, str]]
    trials: list[tuple[str, str]]


def render_report(found: Findings) -> str:
    """report.html of the sweep whose comparison FOUND (its findings) holds."""
    f, comparison = found, found.comparison
    results = comparison.results
    palette = colours(results.models)
    runs = collect_runs(results.sweep, results.trials, results.finals)
    order = [r.model for r in f.ok]
    with matplotlib.rc_context(STYLE):
        timeline = fig_timeline(runs, palette)
        drawn = {
            "pareto": accuracy_scatter(f.ok, palette, "train_time_s", "training time of the final run (s, log scale)",
                                       f.front) if f.ok else None,
            "params": accuracy_scatter(f.ok, palette, "params", "parameters (log scale)", []) if f.ok else None,
            "curves": fig_search(results, [*order, *(m for m in results.models if m not in order)], palette),
            "confusion": fig_confusion(results, f),
            "f1": fig_per_class_f1(results, f),
            "timeline": timeline,
        }
        figures = {name: png(fig) if fig else None for name, fig in drawn.items()}
        trust = {"statistics": report_statistics.section(f.stats), "learned": learned(results, f.ok + f.failed),
                 "errors": {"grids": error_grids(order, f.predictions),
                            "disagree": disagreements(f.stats, f.predictions),
                            "canvases": detection_canvases(order, f.predictions)},
                 "calibration": report_calibration.calibration(f.ok, f.predictions, palette),
                 "robustness": robustness(f.ok, results, palette)}
        more = render_inputs(SectionInputs(f.ok, f.predictions, palette, results))  # tune/report/sections.py
    sweep = results.sweep
    return PAGE.get_template("report.html.j2").render(
        preset=str(sweep.preset), meta=_meta(sweep), cards=_cards(f),
        verdict=[emphasis(" ".join(p)) for p in what_this_means(f, page=True)], table=_table(comparison),
        search=_search_rows(comparison), figures=figures, size_caption=_size_caption(f), bars=error_bars(f.ok),
        per_seed=over_seeds(f.ok), timeline_caption=caption(runs) if runs else "",
        failures=_failures(f), env=_env(results), **trust,
        cost=cost_section(comparison), more_sections=more)


def emphasis(text: str) -> list[tuple[str, bool]]:
    """Text as (piece, bold) pairs: what_this_means marks names **like this** for the page to show in bold."""
    return [(piece, i % 2 == 1) for i, piece in enumerate(re.split(r"\*\*(.+?)\*\*", text)) if piece]


# ---- figures of the models' errors per digit ------------------------------------------------------------------

def fig_confusion(results: SweepResults, f: Findings) -> Figure | None:
    mats = [(r.model, np.array(runs[0].confusion_matrix)) for r in f.ok
            if (runs := results.finals.get(r.model)) and runs[0].confusion_matrix]
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
    return fig


def fig_per_class_f1(results: SweepResults, f: Findings) -> Figure | None:
    rows = [(r.model, np.mean([run.per_class_f1 for run in results.finals.get(r.model, []) if run.per_class_f1],
                              axis=0))
            for r in f.ok if any(run.per_class_f1 for run in results.finals.get(r.model, []))]
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
    return fig


# ---- what the template lays out --------------------------------------------------------------------------------

def _size_caption(f: Findings) -> str:
    sized = [r for r in f.ok if r.mean("params")]
    if not sized or f.best is None:
        return ""
    small, best = min(sized, key=lambda r: r.mean("params") or 0.0), f.best
    text = f"The most accurate model, {best.model}, has {fmt_number(best.mean('params'))} parameters"
    if small.model == best.model:
        return text + "; it is also the smallest."
    gap = ((best.test_accuracy or 0.0) - (small.test_accuracy or 0.0)) * 100
    ratio = (best.mean("params") or 0.0) / (small.mean("params") or 1.0)
    return (text + f", {ratio:.1f}× as many as the smallest, {small.model} ({fmt_number(small.mean('params'))}), "
            f"which is {gap:.2f} points behind.")


def _cards(f: Findings) -> list[tuple[str, str, str]]:
    """The summary's key, value and subtitle cards."""
    cards: list[tuple[str, str, str]] = []
    best = f.best
    if best is None:
        return cards
    cards.append(("Most accurate", best.model, fmt_accuracy(best.test_accuracy, best.test_accuracy_std)))
    top = f.stats.top if f.stats else None
    if top is not None and top.a == best.model and top.p_holm is not None:
        cards.append(("Top-two gap", "significant" if top.separated else "not significant",
                      f"McNemar p = {report_statistics.p_text(top.p_holm)} (Holm) vs {top.b}"))
    chance = f.stats.of(best.model) if f.stats else None
    if chance is not None and chance.p_best is not None:
        cards.append(("Chance it is the best", report_statistics.share(chance.p_best),
                      f"of {chance.over_images.n_resamples:,} bootstrap resamples"))
    cheap = f.cheapest_near_best()
    if cheap:
        cards.append((f"Cheapest within {NEAR_BEST_POINTS} pts", cheap.model,
                      f"{fmt_number(cheap.train_time_s, 1, ' s')} of training"))
    if f.failed:
        cards.append(("Could not train", ", ".join(r.model for r in f.failed), "see Failures below"))
    return cards


def _table(comparison: Comparison) -> Table | None:
    """Performance per model; the search's side (trials, best config) is a second table, so both fit the page.

    Its columns are the compared RunResult fields the report shows (jobs/engine/run_result.py), mAP@.5 and mAP
    sharing one, then the seeds."""
    shown = display_rows(comparison)
    if not shown:
        return None
    for cells in shown:
        if "mAP" in cells:
            both = f"{cells['mAP@.5']} / {cells['mAP']}"
            cells["mAP@.5 / mAP"] = "—" if both == "— / —" else both
    headings = [how.heading or name for name, how in comparison.shown(report=True)]
    headings = [("mAP@.5 / mAP" if h == "mAP@.5" else h) for h in headings if h != "mAP"]
    metrics = [h for h in [*headings, "Seeds"] if h in shown[0]]
    out = []
    for i, (cells, row) in enumerate(zip(shown, comparison.rows, strict=True)):
        # A failed model's reason spans the metric columns, where numbers would otherwise be dashes.
        out.append(TableRow(row.model, row.pareto, row.ok, row.status, [cells[h] for h in metrics], cells["Status"],
                            "best" if i == 0 and row.ok else ("" if row.ok else "failed")))
    return Table(metrics, out)


def _search_rows(comparison: Comparison) -> list[SearchRow]:
    return [SearchRow(row.model, fmt_number(row.trials), fmt_number(row.failed_trials),
                      fmt_accuracy(row.best_val_accuracy, None), fmt_config(row.best_config))
            for row in comparison.rows]


def _failures(f: Findings) -> Failures | None:
    """Each failure once: a model that could not be trained with its reason, and the failed search trials with
    theirs."""
    crashed = [r for r in f.ok + f.failed if r.failed_trials]
    if not f.failed and not crashed:
        return None
    return Failures([(r.model, reason(r)) for r in f.failed],
                    [(r.model, f"{r.failed_trials} of {r.trials} search trials failed: "
                      + "; ".join(f"{error}{f' (×{count})' if count > 1 else ''}"
                                  for error, count in _errors(f.comparison.results, r.model).items()))
                     for r in f.ok if r.failed_trials])


def _errors(results: SweepResults, model: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for trial in results.trials:
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
    held = [(what, _held(runs)) for what, runs in (("Each search trial", results.trials), ("each retrain", finals))]
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


def _held(runs: list[HeldRun]) -> str:
    """"1 CPU", "2 CPUs + 1 GPU", or "1 CPU or 2 CPUs" when runs held different amounts; "" when none recorded."""
    asks: list[str] = []
    for run in runs:
        ask = held_text(run.resources or {})
        if ask and ask not in asks:
            asks.append(ask)
    return " or ".join(asks)


def _when(stamp: str | None) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(stamp)
