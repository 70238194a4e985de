"""The report's "What it costs" section: serving, compute and training cost per architecture, its verdicts and its
figures; the markup is tune/report/templates/cost.html.j2.

Reads what the comparison computed (tune/analysis/comparison.py: its rows with their cost columns and histories,
tune/analysis/cost_columns.py, and the sweep's totals); tune/analysis/verdicts.py picks the verdicts; the table is
tune/report/cost_table.py's, the figures tune/report/cost_figures.py's. A failed model keeps its row in the table (its
search cost is real) but is left out of the figures; a value a model lacks shows as "—".

Prices: the report's --price, else the sweep's, else tune/sweep/prices.py's DEFAULT_PRICES: Google Cloud Compute
Engine's on-demand list prices in us-central1 as of 2024 (N1 vCPU $0.031611 an hour, cloud.google.com/compute/
vm-instance-pricing; NVIDIA V100 $2.48 a GPU-hour, cloud.google.com/compute/gpus-pricing). When this was written
Google's pages could not be read back with their figures; both agree with third-party copies of those pages (a cost
tool's default "GCP us-central1" vCPU price, GPU price tables listing "1 NVIDIA V100 GPU $2.48"). A dated reference, not
a quote: the report prints them with their source and says how to pass real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib

from jobs.engine.atomic import JsonValue
from tune.analysis.comparison import Comparison
from tune.analysis.cost import SweepCosts, fmt_usd
from tune.analysis.row import ComparisonRow
from tune.analysis.stats import pareto_front
from tune.analysis.verdicts import cheapest_to_target, fastest_within
from tune.report.cost_figures import SCATTERS, CostFigure, scatter_figure, time_to_accuracy_figure, training_cost_figure
from tune.report.cost_table import NEAR_BEST_POINTS, CostTable, cost_table, table_notes
from tune.report.figures import STYLE, colours
from tune.report.words import singular
from tune.sweep.prices import DEFAULT_PRICES, Prices

DEFAULT_PAGES = ("cloud.google.com/compute/vm-instance-pricing (vCPU) and cloud.google.com/compute/gpus-pricing "
                 "(GPU)")


@dataclass(frozen=True)
class CostSection:
    """What cost.html.j2 lays out: verdicts, how serving was measured, the table and its notes, totals, prices and
    figures."""

    verdicts: list[str]
    serving: str
    table: CostTable
    notes: list[str]
    totals: str
    prices: str
    scatters: list[CostFigure]
    curve: CostFigure | None


def cost_section(comparison: Comparison) -> CostSection:
    """The section from what COMPARISON computed: its rows' costs and histories, the sweep's totals, the prices."""
    results, rows, ok = comparison.results, comparison.rows, comparison.ok
    palette = colours(results.models)
    with matplotlib.rc_context(STYLE):
        scatters = [training_cost_figure(ok, palette)]
        scatters += [scatter_figure(ok, palette, *spec) for spec in SCATTERS]
        curve = time_to_accuracy_figure(ok, palette)
    return CostSection(verdicts(ok), serving_text(comparison), cost_table(results, rows), table_notes(results, rows),
                       totals_text(comparison.costs), prices_text(comparison.prices), scatters if ok else [],
                       curve if ok else None)


# ---- verdicts -------------------------------------------------------------------------------------------------

def verdicts(ok: list[ComparisonRow]) -> list[str]:
    """The section's verdict lines, from tune/analysis/verdicts.py on the trained models' rows."""
    if not ok:
        return ["No architecture finished training, so there is no serving or training cost to compare."]
    out = []
    fast = fastest_within([r for r in ok if not r.detector], NEAR_BEST_POINTS)
    if fast:
        out.append(_sentence(fast.text))
    else:
        out.append("No trained classifier has a serving latency, so there is no fastest to serve.")
    cheap = cheapest_to_target(ok)
    if cheap:
        out.append(_sentence(cheap.text) + f" ({cheap.time_s:,.1f} s of training).")
    else:
        out.append("No architecture reached 99% validation accuracy in the history used (see the table), so none "
                   "can be called the cheapest to train to 99%.")
    priced = {r.model: (r.test_accuracy, cost) for r in ok if r.test_accuracy is not None
              and (cost := r.value("cost_usd")) is not None and cost > 0}
    if len(priced) > 1:
        front = pareto_front({m: accuracy for m, (accuracy, _) in priced.items()},
                             {m: cost for m, (_, cost) in priced.items()})
        out.append("On the Pareto front of accuracy against total training cost (search + retrains): "
                   f"{', '.join(front)}.")
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def serving_text(comparison: Comparison) -> str:
    """How serving was measured, from each trained model's first retrain's `serving` record."""
    setups: dict[str, list[str]] = {}
    per_canvas = []
    for row in comparison.ok:
        runs = comparison.results.finals.get(row.model) or []
        record = runs[0].serving if runs else {}
        if record:
            setups.setdefault(_setup(record), []).append(row.model)
            per_canvas += [row.model] if record.get("unit") == "canvas" else []
    if not setups:
        return "No retrain recorded how its serving cost was measured."
    if len(setups) == 1:
        text = f"Serving was measured {next(iter(setups))}"
    else:
        text = "Serving was measured " + "; ".join(f"for {', '.join(models)} {setup}"
                                                   for setup, models in setups.items())
    return text + (f"; {', '.join(per_canvas)} per canvas, the others per image." if per_canvas else ".")


def _setup(s: Mapping[str, JsonValue]) -> str:
    device = singular(str(s.get("device_name") or s.get("device") or "an unrecorded device"))
    threads = s.get("threads")
    threads_text = f" with {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    text = (f"on {device}{threads_text}, {s.get('precision', 'fp32')}: latency at "
            f"batch {s.get('latency_batch', 1)} over {s.get('latency_calls', '?')} calls after "
            f"{s.get('latency_warmup', '?')} warm-up calls (median and 95th percentile)")
    if s.get("throughput_batch"):
        text += (f", throughput at batch {s['throughput_batch']} over {s.get('throughput_calls', '?')} calls after "
                 f"{s.get('throughput_warmup', '?')} warm-up")
    return text


def totals_text(spent: SweepCosts) -> str:
    """The whole sweep: resource-seconds held and what they cost."""
    if not spent.total.cpu_s and not spent.total.gpu_s:
        return ("No search trial or retrain recorded when it started and ended, so the sweep's resource-seconds and "
                "cost are unknown.")
    search = sum(m.search.usd(spent.prices) for m in spent.by_model.values())
    retrain = sum(m.retrain.usd(spent.prices) for m in spent.by_model.values())
    text = (f"The whole sweep held {spent.total.cpu_s:,.0f} CPU-seconds and {spent.total.gpu_s:,.0f} GPU-seconds: "
            f"{fmt_usd(spent.total_usd)} at the prices below (search {fmt_usd(search)}, retrains "
            f"{fmt_usd(retrain)}). A run holds its share of CPUs and GPUs from its start to its end, start-up and "
            "evaluation included, as a cloud bill would charge; memory, disks and network are not priced.")
    if spent.untimed:
        text += (f" {spent.untimed} record{'s' if spent.untimed > 1 else ''} without a start or end time "
                 "count as 0.")
    return text


def prices_text(prices: Prices) -> str:
    text = (f"Prices: ${prices.cpu_hour:g} per vCPU-hour and ${prices.gpu_hour:g} per GPU-hour (a fractional GPU "
            f"pays its fraction). Source: {prices.source}.")
    if prices == DEFAULT_PRICES:
        text += (f" These defaults are the list prices on {DEFAULT_PAGES}, read in 2024 and not re-checked since; "
                 "prices change and differ by provider, region and commitment. Pass your own with "
                 "--price cpu_hour=…,gpu_hour=… to jobs.sweep (recorded in sweep.json) or to jobs.report (this "
                 "report only).")
    return text

