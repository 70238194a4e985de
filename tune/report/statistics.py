"""Is the ranking real? The report's statistics over every pair of models and every seed
(tune/analysis/significance.py): McNemar on seed-matched predictions, Holm-adjusted over the pairs; a bootstrap 95%
interval of each model's accuracy, over test images and over seeds x images; the chance each model is the best; and,
where the top two are not separated, how many more test images or seeds would separate them.

Models are compared only on the same test images: a model retrained with another test_limit saw other images,
and such a pair is named, not tested.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from tune.analysis.significance import (
    ALPHA,
    N_RESAMPLES,
    Interval,
    MatchedMcNemar,
    SeparationEstimate,
    bootstrap_accuracy,
    holm,
    matched_mcnemar,
    probability_best,
    separation_estimate,
)
from tune.report.predictions import SweepPredictions, correctness

POWER = 0.8  # of the separation estimate


@dataclass
class ModelStats:
    model: str
    accuracy: float  # share of right (seed, image) cells: the mean test accuracy over seeds
    seeds: int
    images: int
    over_images: Interval  # bootstrap over test images, every seed kept
    over_seeds: Interval | None  # bootstrap over seeds, then images; with 2+ seeds
    p_best: float | None = None  # share of resamples in which it is the most accurate of its test set's models


@dataclass
class Pair:
    """Models A (the more accurate) and B: their seed-matched McNemar test, or why there is none."""

    a: str
    b: str
    test: MatchedMcNemar | None
    p_holm: float | None = None
    note: str = ""

    @property
    def separated(self) -> bool:
        return self.p_holm is not None and self.p_holm < ALPHA


@dataclass
class Statistics:
    models: list[ModelStats]  # best first
    pairs: list[Pair]
    top: Pair | None  # the best model against the runner-up tested on the same images
    separation: SeparationEstimate | None = None
    groups: list[list[str]] = field(default_factory=list)  # models per test set, when there is more than one
    missing: dict[str, str] = field(default_factory=dict)  # models without per-image predictions: why
    runner_up_note: str = ""  # why the overall runner-up is not the one tested against the best

    @property
    def tested(self) -> int:
        return sum(p.test is not None for p in self.pairs)

    def of(self, model: str) -> ModelStats | None:
        return next((m for m in self.models if m.model == model), None)


def compute(order: list[str], predictions: SweepPredictions, n_resamples: int = N_RESAMPLES) -> Statistics:
    """Statistics of the models in ORDER (best first) that kept per-image predictions."""
    models = [m for m in order if m in predictions.runs]
    correct = {m: correctness(predictions.runs[m]) for m in models}
    sets = {m: next(iter(predictions.runs[m].values())).test_set for m in models}
    groups: dict[Any, list[str]] = {}
    for m in models:
        groups.setdefault(sets[m], []).append(m)
    stats = []
    for m in models:
        seeds = correct[m]
        stats.append(ModelStats(m, float(sum(c.sum() for c in seeds.values()) / sum(c.size for c in seeds.values())),
                                len(seeds), sets[m][0], bootstrap_accuracy(seeds, n_resamples, resample_seeds=False),
                                bootstrap_accuracy(seeds, n_resamples) if len(seeds) >= 2 else None))
    by_name = {s.model: s for s in stats}
    for members in groups.values():
        if len(members) >= 2:
            for m, share in probability_best({m: correct[m] for m in members}, n_resamples).items():
                by_name[m].p_best = share
    pairs = [_pair(a, b, correct, sets) for a, b in itertools.combinations(models, 2)]
    tested = [p for p in pairs if p.test is not None]
    for p, adjusted in zip(tested, holm([p.test.pooled.p_value for p in tested]), strict=True):
        p.p_holm = adjusted
    missing = {m: predictions.notes.get(m, "no per-image test predictions") for m in order if m not in models}
    result = Statistics(stats, pairs, None, groups=list(groups.values()) if len(groups) > 1 else [], missing=missing)
    _top(result, order, sets)
    return result


def _pair(a: str, b: str, correct: dict[str, dict[int, Any]], sets: dict[str, tuple[int, bytes]]) -> Pair:
    if sets[a] != sets[b]:
        if sets[a][0] != sets[b][0]:
            return Pair(a, b, None, note=f"tested on different images ({sets[a][0]:,} and {sets[b][0]:,}): "
                                         "cannot be paired")
        return Pair(a, b, None, note="tested on different images: cannot be paired")
    try:
        return Pair(a, b, matched_mcnemar(correct[a], correct[b]))
    except ValueError as exc:  # no seed in common
        return Pair(a, b, None, note=str(exc))


def _top(stats: Statistics, order: list[str], sets: dict[str, tuple[int, bytes]]) -> None:
    """The best model's pair with its runner-up on the same images; the separation estimate when not separated."""
    if len(order) < 2 or order[0] not in sets:
        return
    best, second = order[0], order[1]
    if second not in sets:
        stats.runner_up_note = f"{second} kept no per-image test predictions"
    elif sets[second] != sets[best]:
        stats.runner_up_note = (f"{second} was tested on other images than {best} ({sets[second][0]:,} and "
                                f"{sets[best][0]:,}), so the two cannot be paired")
    stats.top = next((p for p in stats.pairs if p.a == best and p.test is not None), None)
    top = stats.top
    if top is not None and not top.separated:
        pooled = top.test.pooled
        stats.separation = separation_estimate(pooled.b, pooled.c, sets[best][0], len(top.test.seeds),
                                               ALPHA / max(stats.tested, 1), POWER, (top.a, top.b))


# ---- words ------------------------------------------------------------------------------------------------------

def p_text(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def share(p: float) -> str:
    """A probability as a percentage that never rounds a near-certainty to certainty: "> 99%", "< 1%"."""
    if 0.995 <= p < 1:
        return "> 99%"
    if 0 < p < 0.005:
        return "< 1%"
    return f"{p:.0%}"


def seeds_text(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def verdict(stats: Statistics | None, first: str, second: str | None) -> list[str]:
    """The sentences of "What this means" about whether the top of the ranking is real; **name** is bold."""
    if stats is None or second is None:
        return []
    out = []
    top, note = stats.top, stats.runner_up_note
    if top is None:
        why = stats.missing.get(first) or (f"{note}, and no other model was tested on the same images" if note
                                           else "no other model was tested on the same images")
        out.append(f"Whether {first}'s lead is real could not be tested: {why}.")
    else:
        if note:
            out.append(f"{note}; the next model tested on the same images as {first} is **{top.b}**.")
        m, seeds = top.test.pooled, top.test.seeds
        where = (f"On {seeds_text(len(seeds))} × {m.n // len(seeds):,} test images, matched seed to seed,"
                 if len(seeds) > 1 else f"On the {m.n:,} test images of seed {seeds[0]}")
        judged = (f"so the gap is significant at the {ALPHA} level: it is unlikely to be chance" if top.separated else
                  f"so the gap is not significant at the {ALPHA} level: on this test set the two are statistically "
                  "indistinguishable")
        family = f", Holm-adjusted over the {stats.tested} pairs of models," if stats.tested > 1 else ","
        out.append(f"{where} **{top.a}** is right where **{top.b}** is wrong {m.b} times and the reverse happens "
                   f"{m.c} times; McNemar's test ({m.method}){family} gives p = {p_text(top.p_holm)}, {judged}.")
    best = stats.of(first)
    if best is not None and best.p_best is not None:
        others = " among the models tested on the same images" if stats.groups else ""
        resampled = "seeds and test images" if best.seeds > 1 else "test images"
        out.append(f"**{first}** is the most accurate{others} in {share(best.p_best)} of the "
                   f"{best.over_images.n_resamples:,} bootstrap resamples of the {resampled}.")
    if stats.separation is not None and stats.separation.pairs_needed is not None:
        out.append(stats.separation.sentence)
    return out


def section(stats: Statistics | None) -> dict[str, Any] | None:
    """What the template's statistics card lays out: a row per model, a row per pair, the notes."""
    if stats is None:
        return None
    rows = []
    for s in stats.models:
        rows.append({"model": s.model, "accuracy": f"{s.accuracy * 100:.2f}%", "images": f"{s.images:,}",
                     "seeds": s.seeds, "ci_images": _interval(s.over_images),
                     "ci_seeds": _interval(s.over_seeds) if s.over_seeds else "—",
                     "p_best": "—" if s.p_best is None else share(s.p_best)})
    pairs = []
    for p in stats.pairs:
        if p.test is None:
            pairs.append({"a": p.a, "b": p.b, "tested": False, "note": p.note})
            continue
        m = p.test.pooled
        winner = p.a if m.b > m.c else p.b
        pairs.append({"a": p.a, "b": p.b, "tested": True, "b_only": f"{m.b:,}", "c_only": f"{m.c:,}",
                      "n": f"{m.n:,}", "seeds": len(p.test.seeds), "method": _method(m.method),
                      "p": p_text(m.p_value), "p_holm": p_text(p.p_holm), "separated": p.separated,
                      "verdict": f"{winner} better" if p.separated else "not separated"})
    multi = any(s.seeds > 1 for s in stats.models)
    return {"rows": rows, "pairs": pairs, "multi_seed": multi, "alpha": ALPHA, "tested": stats.tested,
            "resamples": stats.models[0].over_images.n_resamples if stats.models else N_RESAMPLES,
            "groups": [", ".join(g) for g in stats.groups], "missing": sorted(stats.missing.items()),
            "separation": stats.separation.sentence if stats.separation else ""}


def _interval(interval: Interval) -> str:
    return f"{interval.low * 100:.2f}–{interval.high * 100:.2f}%"


def _method(method: str) -> str:
    return {"exact binomial": "exact", "chi-square, continuity-corrected": "χ²",
            "no discordant images": "never disagree"}.get(method, method)
