"""OUTPUT/report.html: one self-contained page (inline CSS, figures as base64 PNG) that reads at a glance.

The verdicts in "What this means" are computed from the numbers here, never written by hand, so the page
cannot claim more than the results support. This module computes findings and figures; the page's markup is
the Jinja2 template tune/templates/report.html.j2.
"""

from __future__ import annotations

import base64
import io
import math
import re
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

from tune.comparison import (
    SweepResults,
    display_rows,
    fmt_accuracy,
    fmt_config,
    fmt_number,
    records,
    shown_columns,
)
from tune.stats import McNemar, correctness, mcnemar
from tune.sweep_record import Sweep
from tune.timeline import busy_text, caption, collect_runs, fig_timeline

ALPHA = 0.05
NEAR_BEST_POINTS = 0.5  # "as good as the best" for the cheapest-model verdict, in accuracy points
STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.alpha": 0.3, "axes.titleweight": "bold", "figure.dpi": 110}


# ---- findings: the numbers the verdicts rest on ---------------------------------------------------------------

@dataclass
class Findings:
    ok: list[dict[str, Any]]  # rows of trained models, most accurate first
    failed: list[dict[str, Any]]
    mcnemar: McNemar | None = None
    mcnemar_note: str = ""
    front: list[str] = field(default_factory=list)  # Pareto front of accuracy against train time, fastest first

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


def findings(results: SweepResults, table: pd.DataFrame) -> Findings:
    rows = records(table)
    ok = [r for r in rows if r["status"] == "ok" and r["test_accuracy"] is not None]
    front = [r["model"] for r in sorted(ok, key=lambda r: r["train_time_s"] or 0) if r["pareto"]]
    found = Findings(ok=ok, failed=[r for r in rows if r["status"] != "ok"], front=front)
    if len(ok) > 1:
        found.mcnemar, found.mcnemar_note = top_two_mcnemar(results, ok[0]["model"], ok[1]["model"])
    return found


def top_two_mcnemar(results: SweepResults, first: str, second: str) -> tuple[McNemar | None, str]:
    """McNemar on seed 0 of both models; the reason it cannot run otherwise."""
    if not results.finals.get(first) or not results.finals.get(second):
        return None, "a model has no final result"
    a, b = results.finals[first][0], results.finals[second][0]
    labels = a.test_labels or b.test_labels
    if not labels:
        return None, "result.json has no test_labels, so per-image correctness is unknown"
    if not a.test_predictions or not b.test_predictions:
        return None, "a result.json has no test_predictions"
    if b.test_labels and a.test_labels and a.test_labels != b.test_labels:
        return None, f"{first} and {second} were tested on different images"
    try:
        return mcnemar(correctness(a.test_predictions, labels), correctness(b.test_predictions, labels)), ""
    except ValueError as exc:
        return None, str(exc)


def what_this_means(f: Findings) -> list[str]:
    """The verdict as sentences; **name** marks what the HTML shows in bold."""
    out: list[str] = []
    best, second = f.best, f.runner_up
    if best is None:
        out.append("No architecture finished training, so there is nothing to compare.")
    else:
        line = f"**{best['model']}** is the most accurate: {_pct(best)} mean test accuracy{_spread(best)}"
        if second:
            gap = (best["test_accuracy"] - second["test_accuracy"]) * 100
            line += f", {gap:.2f} points ahead of **{second['model']}** ({_pct(second)})"
        out.append(line + ".")
    if second and f.mcnemar:
        m = f.mcnemar
        verdict = (f"so the gap is significant at the {ALPHA} level: it is unlikely to be chance"
                   if m.significant(ALPHA) else
                   f"so the gap is not significant at the {ALPHA} level: on this test set the two are "
                   "statistically indistinguishable")
        out.append(f"On seed 0's {m.n:,} test images {best['model']} is right where {second['model']} is wrong "
                   f"{m.b} times and the reverse happens {m.c} times; McNemar's test ({m.method}) gives "
                   f"p = {_p(m.p_value)}, {verdict}.")
    elif second:
        out.append(f"McNemar's test on the top two could not be run: {f.mcnemar_note}.")
    if len(f.ok) > 1:
        out += _cost_sentences(f)
    for row in f.failed:
        out.append(f"**{row['model']}** could not be trained: {row['reason'] or 'no reason was recorded'}.")
    crashed = [r for r in f.ok if r["failed_trials"]]
    if crashed:
        count = sum(r["failed_trials"] for r in crashed)
        names = ", ".join(f"{r['model']} {r['failed_trials']} of {r['trials']}" for r in crashed)
        out.append(f"{count} search trial{'s' if count > 1 else ''} of trained models failed ({names}); "
                   "the best configurations were chosen from the rest.")
    elif f.ok and not f.failed:
        out.append("Every architecture and every search trial trained.")
    return out


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


def plain(sentences: list[str]) -> str:
    return " ".join(s.replace("**", "") for s in sentences)


def _pct(row: dict[str, Any]) -> str:
    return fmt_accuracy(row["test_accuracy"], None)


def _spread(row: dict[str, Any]) -> str:
    if row["seeds"] == 1 or row["test_accuracy_std"] is None:
        return " from a single seed"
    return f" over {row['seeds']} seeds (± {row['test_accuracy_std'] * 100:.2f} points)"


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


# ---- figures ------------------------------------------------------------------------------------------------

def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # constrained layout already trims margins
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colours(models: list[str]) -> dict[str, Any]:
    palette = matplotlib.colormaps["tab10"]
    return {m: palette(i % 10) for i, m in enumerate(models)}


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
    ax.xaxis.set_major_formatter(FuncFormatter(_short_number))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.margins(x=0.15, y=0.15)
    return _png(fig)


def _short_number(value: float, _pos: int | None = None) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def fig_curves(results: SweepResults, f: Findings, colours: dict[str, Any]) -> str | None:
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = 0
    for r in f.ok:
        history = best_trial_history(results, r["model"])
        points = [(h["epoch"], h["val_accuracy"] * 100) for h in history if h.get("val_accuracy") is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", ms=4, color=colours[r["model"]], label=r["model"])
            drawn += 1
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, loc="lower right")
    return _png(fig)


def best_trial_history(results: SweepResults, model: str) -> list[dict[str, Any]]:
    """The best search trial's epochs (the sweep's pick, else the best val accuracy); the final run's if none."""
    trials = [t for t in results.trials if t.model == model and t.history]
    chosen = results.status(model).best_trial_id
    pick = next((t for t in trials if t.trial_id == chosen), None)
    if pick is None and trials:
        pick = max(trials, key=lambda t: t.val_accuracy or 0)
    if pick:
        return pick.history
    finals = results.finals.get(model)
    return finals[0].history if finals else []


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
    return _png(fig)


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
    return _png(fig)


# ---- page: what the template lays out ------------------------------------------------------------------------

TEMPLATES = Path(__file__).parent / "templates"
# Autoescaping everywhere: model names, reasons and configurations come from files a sweep wrote, never as markup.
PAGE = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
PAGE.filters["thousands"] = lambda n: f"{n:,}"


def render_report(results: SweepResults, table: pd.DataFrame) -> str:
    f = findings(results, table)
    colours = _colours(results.models)
    runs = collect_runs(results.sweep, results.trials, results.finals)
    with matplotlib.rc_context(STYLE):
        timeline = fig_timeline(runs, colours)
        figures = {
            "pareto": fig_tradeoff(f, colours, "train_time_s", "training time of the final run (s, log scale)", True)
            if f.ok else None,
            "params": fig_tradeoff(f, colours, "params", "parameters (log scale)", False) if f.ok else None,
            "curves": fig_curves(results, f, colours),
            "confusion": fig_confusion(results, f),
            "f1": fig_per_class_f1(results, f),
            "timeline": _png(timeline) if timeline else None,
        }
    sweep = results.sweep
    return PAGE.get_template("report.html.j2").render(
        preset=str(sweep.preset), meta=_meta(sweep), cards=_cards(f),
        verdict=emphasis(" ".join(what_this_means(f))), table=_table(table), search=_search_rows(table),
        figures=figures, size_caption=_size_caption(f), timeline_caption=caption(runs) if runs else "",
        mcnemar=_mcnemar(f), failures=_failures(f), env=_env(sweep))


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
    cards = []
    if f.best:
        best = f.best
        cards.append(("Most accurate", best["model"], fmt_accuracy(best["test_accuracy"], best["test_accuracy_std"])))
    if f.mcnemar and f.runner_up:
        cards.append(("Top-two gap", "significant" if f.mcnemar.significant(ALPHA) else "not significant",
                      f"McNemar p = {_p(f.mcnemar.p_value)} vs {f.runner_up['model']}"))
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


def _mcnemar(f: Findings) -> dict[str, Any]:
    a, b, m = f.best, f.runner_up, f.mcnemar
    if not (a and b) or m is None:
        return {"pair": bool(a and b), "test": None, "note": f.mcnemar_note}
    return {"pair": True, "test": m, "first": a["model"], "second": b["model"], "method": _method(m),
            "p": _p(m.p_value), "verdict": "significant" if m.significant(ALPHA) else "not significant", "alpha": ALPHA}


def _method(m: McNemar) -> str:
    if m.method == "exact binomial":
        return (f"With fewer than 25 disagreements the exact test is used: {min(m.b, m.c)} of {m.b + m.c} against a "
                "fair coin (binomial, two-sided)")
    if m.b + m.c == 0:
        return "They never disagree"
    return f"Chi-square with continuity correction: χ² = {m.statistic:.2f}, 1 degree of freedom"


def _failures(f: Findings) -> dict[str, Any] | None:
    crashed = [r for r in f.ok + f.failed if r["failed_trials"]]
    if not f.failed and not crashed:
        return None
    return {"models": [(r["model"], r["reason"] or "no reason recorded") for r in f.failed],
            "trials": ", ".join(f"{r['model']} {r['failed_trials']} of {r['trials']}" for r in crashed)}


def _meta(sweep: Sweep) -> list[str]:
    parts = [f"preset {sweep.preset}", f"{sweep.search} search, {sweep.samples} samples per model",
             f"{sweep.seeds} seed(s) per final model"]
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


def _env(sweep: Sweep) -> str:
    env = sweep.env or {}
    return "Environment: " + (", ".join(f"{k} {v}" for k, v in env.items()) or "not recorded") + \
        f". Sweep started {_when(sweep.started)}, finished {_when(sweep.finished)}."


def _when(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return str(stamp)
