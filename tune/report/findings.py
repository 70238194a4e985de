"""What the numbers say: the findings the report's verdicts rest on, and "What this means" in words.

The verdicts are computed from the comparison (tune/analysis/comparison.py) and the statistics over every pair and
seed (tune/report/statistics.py), never written by hand, so the page cannot claim more than the results support.
The same sentences are printed after a sweep and by `python -m jobs.report`.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

from tune.analysis.comparison import Comparison, fmt_accuracy, fmt_number
from tune.analysis.row import ComparisonRow
from tune.analysis.significance import N_RESAMPLES
from tune.report import statistics as report_statistics
from tune.report.predictions import SweepPredictions, sweep_predictions
from tune.report.statistics import Statistics
from tune.report.words import brief, names_text

NEAR_BEST_POINTS = 0.5  # "as good as the best" for the cheapest-model verdict, in accuracy points
TERMINAL_COLUMNS = 100  # the printed summary's line length
BRIEF_CHARS = 90  # a failure's reason in the printed summary; report.html says it in full


@dataclass
class Findings:
    """The comparison, every final run's predictions, and the statistics over them (None when nothing trained)."""

    comparison: Comparison
    predictions: SweepPredictions
    stats: Statistics | None = None

    @property
    def ok(self) -> list[ComparisonRow]:
        """Rows of trained models, most accurate first."""
        return self.comparison.ok

    @property
    def failed(self) -> list[ComparisonRow]:
        return self.comparison.failed

    @property
    def front(self) -> list[str]:
        """The Pareto front of accuracy against train time, fastest first."""
        return [r.model for r in sorted(self.ok, key=lambda r: r.train_time_s or 0) if r.pareto]

    @property
    def best(self) -> ComparisonRow | None:
        return self.ok[0] if self.ok else None

    @property
    def runner_up(self) -> ComparisonRow | None:
        return self.ok[1] if len(self.ok) > 1 else None

    def per_second(self) -> ComparisonRow | None:
        timed = [r for r in self.ok if (r.train_time_s or 0) > 0]
        return max(timed, key=lambda r: r.accuracy_per_train_s or 0.0) if timed else None

    def cheapest_near_best(self) -> ComparisonRow | None:
        if not self.best or self.best.test_accuracy is None:
            return None
        floor = self.best.test_accuracy - NEAR_BEST_POINTS / 100
        near = [r for r in self.ok if (r.test_accuracy or 0.0) >= floor and r.train_time_s is not None]
        return min(near, key=lambda r: r.train_time_s or 0.0) if near else None


def findings(comparison: Comparison, n_resamples: int = N_RESAMPLES) -> Findings:
    """The comparison's findings: its trained models' predictions and the statistics over every pair and seed."""
    results, ok = comparison.results, comparison.ok
    predictions = sweep_predictions(results.output, {r.model: results.finals.get(r.model, []) for r in ok})
    stats = report_statistics.compute([r.model for r in ok], predictions, n_resamples) if ok else None
    return Findings(comparison, predictions, stats)


def what_this_means(f: Findings, page: bool = False) -> list[list[str]]:
    """The verdict as paragraphs of sentences (the ranking, whether it is real, the cost, what failed); **name**
    marks what the HTML shows in bold. PAGE: for report.html, where each failure's reason is said once, under
    Failures, so these sentences only point there; else (the command line) each failure is said briefly."""
    best, second = f.best, f.runner_up
    if best is None:
        ranking = ["No architecture finished training, so there is nothing to compare."]
        real: list[str] = []
    else:
        line = f"**{best.model}** is the most accurate: {_pct(best)} mean test accuracy{_spread(best)}"
        if second:
            gap = ((best.test_accuracy or 0.0) - (second.test_accuracy or 0.0)) * 100
            line += f", {gap:.2f} points ahead of **{second.model}** ({_pct(second)})"
        ranking = [line + "."]
        real = report_statistics.verdict(f.stats, best.model, second.model if second else None)
    cost = _cost_sentences(f) if len(f.ok) > 1 else []
    return [p for p in (ranking, real, cost, _failure_sentences(f, page)) if p]


def _failure_sentences(f: Findings, page: bool) -> list[str]:
    """What could not be trained (models sharing a brief reason said together) and which search trials failed."""
    out: list[str] = []
    if f.failed and page:
        names = names_text(f"**{r.model}**" for r in f.failed)
        out.append(f"{names} could not be trained; why is under Failures below.")
    elif f.failed:
        briefly: dict[str, list[str]] = {}
        for r in f.failed:
            briefly.setdefault(brief(reason(r), BRIEF_CHARS), []).append(r.model)
        out += [f"{names_text(models)} could not be trained: {why}; report.html's Failures section has the full "
                "message." for why, models in briefly.items()]
    crashed = [r for r in f.ok if r.failed_trials]
    if crashed:
        count = sum(r.failed_trials or 0 for r in crashed)
        names = ", ".join(f"{r.model} {r.failed_trials} of {r.trials}" for r in crashed)
        out.append(f"{count} search trial{'s' if count > 1 else ''} of trained models failed ({names}); "
                   "the best configurations were chosen from the rest.")
    elif f.ok and not f.failed:
        out.append("Every architecture and every search trial trained.")
    return out


def reason(row: ComparisonRow) -> str:
    """Why a model could not be trained, without the model's name that the message may already start with."""
    text = (row.reason or "").strip()
    prefix = re.compile(rf"^\s*{re.escape(row.model)}\s*:\s*")
    while prefix.match(text):
        text = prefix.sub("", text, count=1)
    return text or "no reason was recorded"


def _cost_sentences(f: Findings) -> list[str]:
    best = f.best
    assert best is not None
    if f.front == [best.model]:
        # Best and fastest at once: accuracy-per-second and "cheapest near the best" would only repeat it.
        return [f"**{best.model}** is also the fastest to train, so it alone is on the Pareto front of accuracy "
                "against training time: there is no trade-off to make."]
    names = ", ".join(f"**{m}**" for m in f.front)
    out = [f"On the Pareto front of accuracy against training time (no other model is both more accurate and "
           f"faster): {names}."]
    fast = f.per_second()
    if fast:
        out.append(f"**{fast.model}** gives the most accuracy per second of training "
                   f"({_pct(fast)} in {fmt_number(fast.train_time_s, 1, ' s')}).")
    cheap = f.cheapest_near_best()
    if cheap and cheap.model != best.model:
        gap = ((best.test_accuracy or 0.0) - (cheap.test_accuracy or 0.0)) * 100
        ratio = (best.train_time_s or 0.0) / cheap.train_time_s if cheap.train_time_s else math.inf
        times = [fmt_number(r.train_time_s, 1, " s") for r in (cheap, best)]
        out.append(f"The cheapest model within {NEAR_BEST_POINTS} points of the best is **{cheap.model}** "
                   f"({gap:.2f} points behind, {ratio:.1f}× faster to train: {times[0]} against {times[1]}).")
    elif cheap:
        out.append(f"No model within {NEAR_BEST_POINTS} points of {best.model} trains faster, so its extra "
                   "training time is the price of the best accuracy.")
    return out


def plain(paragraphs: list[list[str]], width: int = TERMINAL_COLUMNS) -> str:
    """The verdict for a terminal: a paragraph per theme, a blank line between, each wrapped to WIDTH columns (names
    and numbers are never split)."""
    return "\n\n".join(textwrap.fill(" ".join(s.replace("**", "") for s in p), width, break_long_words=False,
                                       break_on_hyphens=False) for p in paragraphs)


def _pct(row: ComparisonRow) -> str:
    return fmt_accuracy(row.test_accuracy, None)


def _spread(row: ComparisonRow) -> str:
    if row.seeds == 1 or row.test_accuracy_std is None:
        return " from a single seed"
    return f" over {row.seeds} seeds (± {row.test_accuracy_std * 100:.2f} points)"
