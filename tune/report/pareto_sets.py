"""The report's "Accuracy against cost, per architecture" section, for a sweep searched on two objectives
(`--objective accuracy,COST`, tune/sweep/objectives.py): each architecture's Pareto set of configurations (no other
trial of it is both more accurate and cheaper: tune/analysis/stats.py pareto_front) and which one was retrained, and
why (the most accurate, or the most accurate within --budget)."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.engine.finite import is_finite
from tune.analysis.comparison import fmt_config
from tune.analysis.stats import pareto_front
from tune.report.sections import SectionInputs, report_section
from tune.sweep.objectives import COSTS, parse_objective


@dataclass(frozen=True)
class ParetoPoint:
    trial: str
    accuracy: str
    cost: str
    config: str
    retrained: bool


@dataclass(frozen=True)
class ParetoSet:
    model: str
    points: list[ParetoPoint]
    why: str
    trials: int


@dataclass(frozen=True)
class ParetoSets:
    """What pareto_sets.html.j2 lays out: a set per architecture that searched, the cost's name and the budget."""

    sets: list[ParetoSet]
    cost: str
    heading: str
    budget: str


@report_section("pareto_sets", "pareto_sets.html.j2")
def pareto_sets(inputs: SectionInputs) -> ParetoSets | None:
    """None unless the sweep searched on accuracy and a cost; then each architecture's trials on its Pareto front,
    cheapest first, the retrained one marked (it may lie off the front: a budget can pick a dominated trial only
    when nothing cheaper is as accurate, which the front would show)."""
    sweep = inputs.results.sweep
    objective = parse_objective(sweep.objective, None)
    if objective.cost is None:
        return None
    sets = []
    for model in sweep.models:
        trials = {t.trial_id: t for t in sweep.trials if t.model == model and t.status != "failed"
                  and is_finite(t.val_accuracy) and is_finite(t.cost)}
        if not trials:
            continue
        status = sweep.model_status(model)
        front = pareto_front({i: t.val_accuracy for i, t in trials.items()}, {i: t.cost for i, t in trials.items()})
        chosen = status.best_trial_id
        shown = front + [chosen] if chosen in trials and chosen not in front else front
        points = [ParetoPoint(i, f"{trials[i].val_accuracy:.2%}", f"{trials[i].cost:,.4g}",
                              fmt_config(trials[i].config), i == chosen) for i in shown]
        sets.append(ParetoSet(model, points, status.why_chosen or "the most accurate", len(trials)))
    if not sets:
        return None
    label = COSTS[objective.cost]
    budget = f"{objective.cost} ≤ {sweep.budget:g}" if sweep.budget else ""
    return ParetoSets(sets, label, label[0].upper() + label[1:], budget)
