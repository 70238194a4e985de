"""What a search optimises: validation accuracy alone, or accuracy and one cost a trial has without noise from its
neighbours (`--objective accuracy,gflops`), and the budget that chooses the configuration to retrain.

A cost is a property of the configuration, not of the machine: forward GFLOPs per image (per canvas for the
detector; jobs/engine/measure/flops.py) or parameters, computed on the driver from a model built with the trial's
config (ImageNet weights never loaded: they change no shape). Serving latency is not one: trials share their
machine, so a trial's latency says as much about its neighbours as about itself (it is measured only on the final
retrains, each alone). Two objectives: Optuna's multi-objective sampling (TPE) per architecture, ASHA still on the
accuracy (tune/sweep/cost_search.py); the report shows each architecture's Pareto set of configurations. This
module imports no Ray: the command checks the flags with it before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.engine.errors import UsageError

ACCURACY = "accuracy"
COSTS = {"gflops": "forward GFLOPs per image (per canvas for the detector)", "params": "parameters"}
NOT_A_TRIAL_COST = {"latency": "serving latency is measured on the final retrains alone: trials share a machine, so "
                               "theirs would measure their neighbours too"}


@dataclass(frozen=True)
class Objective:
    """`cost`: None for accuracy alone; `budget`: the largest cost of the configuration retrained (None: none)."""

    cost: str | None = None
    budget: float | None = None

    @property
    def text(self) -> str:
        return ACCURACY + (f",{self.cost}" if self.cost else "")


def parse_objective(text: str | None, budget: str | None) -> Objective:
    """--objective accuracy[,COST] and --budget COST=VALUE; UsageError naming what is wrong."""
    parts = [p.strip() for p in (text or ACCURACY).split(",") if p.strip()]
    if not parts or parts[0] != ACCURACY or len(parts) > 2:
        raise UsageError(f"--objective {text!r}: give accuracy, or accuracy and one cost "
                         f"(accuracy,{' or accuracy,'.join(COSTS)})")
    cost = parts[1] if len(parts) == 2 else None
    if cost in NOT_A_TRIAL_COST:
        raise UsageError(f"--objective {text!r}: {NOT_A_TRIAL_COST[cost]}; use {' or '.join(COSTS)}")
    if cost is not None and cost not in COSTS:
        raise UsageError(f"--objective {text!r}: {cost!r} is not a cost a trial measures; use {' or '.join(COSTS)}")
    if budget is None:
        return Objective(cost)
    key, _, value = budget.partition("=")
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if key.strip() != cost or not limit > 0:
        raise UsageError(f"--budget {budget!r}: give {cost or 'a cost of --objective'}=VALUE, a positive number "
                         "(and --objective accuracy,COST)")
    return Objective(cost, limit)
