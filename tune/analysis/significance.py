"""Is the winner really better? Statistics over every pair of models and every seed, on stored test predictions.

Inputs are per-image correctness: a bool array [N] that is True where a model's prediction equals the label, on
the same N test images in the same order for every model. A model trained with several seeds gives one such
array per seed, as a list (list position = seed index), a {seed: array} mapping, or a 2-D array [S, N].

What is here, and where each formula comes from:

- `mcnemar`: McNemar's test for two classifiers on the same images (McNemar 1947; for comparing classifiers,
  Dietterich 1998, "Approximate statistical tests for comparing supervised classification learning
  algorithms", Neural Computation 10(7)).
- `matched_mcnemar`: the same test over seed-matched pairs (seed k of one model against seed k of the other).
- `holm`: Holm's step-down correction of a family of p-values (Holm 1979, Scand. J. Statistics 6(2)).
- `bootstrap_accuracy`: percentile bootstrap interval of accuracy (Efron & Tibshirani 1993, "An Introduction
  to the Bootstrap", ch. 13), over images, and over seeds x images when there are several seeds (Owen 2007).
- `probability_best`: share of paired bootstrap resamples in which each model has the highest accuracy.
- `separation_estimate`: how many more test images (or seeds) would separate two models at the observed
  discordance, by Connor's sample-size formula for McNemar's test (Connor 1987, Biometrics 43(1), p. 209).

The report's one pipeline over them is tune/report/statistics.py `compute` (every pair Holm-adjusted, intervals, the
chance of being best and the separation estimate), on the predictions each final run kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binom, chi2, norm

# McNemar's chi-square statistic is a poor approximation to its chi-square(1) reference when there are few
# discordant images; below 25 the exact binomial test is used instead. The threshold of 25 is the usual rule of
# thumb (Wikipedia, "McNemar's test": "If either b or c is small (b + c < 25) then chi^2 is not well-approximated
# by the chi-squared distribution"; the same cut-off as statsmodels' guidance for `mcnemar(exact=...)`).
EXACT_BELOW = 25
ALPHA = 0.05
N_RESAMPLES = 2000
CONFIDENCE = 0.95

Correctness = Any  # an array [N] or [S, N], a list of [N] arrays, or {seed: [N] array}; numpy or torch


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two classifiers A and B on the same images."""

    b: int  # images A gets right and B gets wrong
    c: int  # images A gets wrong and B gets right
    statistic: float  # min(b, c) for the exact test; the continuity-corrected chi-square otherwise
    p_value: float  # two-sided
    method: str  # "exact binomial", "chi-square, continuity-corrected" or "no discordant images"
    n: int  # image pairs compared (images x matched seeds for a pooled test)


@dataclass(frozen=True)
class MatchedMcNemar:
    """McNemar's test over seed-matched pairs: one pooled test, and each seed's own test for inspection."""

    pooled: McNemarResult
    per_seed: dict[int, McNemarResult]
    seeds: list[int]  # the seeds both models have, ascending


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval; all in the estimate's units (accuracy: 0..1)."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    scheme: str  # "images" or "seeds x images"


@dataclass(frozen=True)
class SeparationEstimate:
    """What it would take to tell two models apart at the discordance rates observed between them."""

    pairs_needed: int | None  # image pairs (images x seeds) for the requested power; None when b == c
    more_images: int | None  # extra test images at the current number of seeds
    more_seeds: int | None  # extra seeds at the current number of test images
    sentence: str


def as_numpy(values: Any) -> np.ndarray:
    """A numpy array from a numpy array, a list, or a torch tensor on any device (without importing torch)."""
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU: numpy cannot read device memory
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def by_seed(correct: Correctness) -> dict[int, np.ndarray]:
    """{seed: bool array [N]} from any accepted form: [N] (seed 0), [S, N], a list, or a mapping.

    Raises ValueError on an empty input, a non-1-D per-seed array, or seeds of different lengths (they would not
    be the same test set).
    """
    if isinstance(correct, Mapping):
        seeds = {int(k): as_numpy(v).astype(bool) for k, v in correct.items()}
    else:
        # A list of per-seed arrays stays a list (the arrays may be torch tensors); a list of booleans is one seed.
        rows = isinstance(correct, list | tuple) and len(correct) > 0 and (
            isinstance(correct[0], list | tuple) or len(getattr(correct[0], "shape", ())) > 0)
        array = None if rows else as_numpy(correct)
        if array is not None and array.ndim == 1:
            seeds = {0: array.astype(bool)}
        else:
            rows = array if array is not None else correct
            seeds = {k: as_numpy(row).astype(bool) for k, row in enumerate(rows)}
    if not seeds:
        raise ValueError("no correctness arrays")
    lengths = {v.shape for v in seeds.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"every seed needs a 1-D correctness array of the same length, got shapes {sorted(lengths)}")
    return dict(sorted(seeds.items()))


def mcnemar_counts(b: int, c: int, n: int | None = None, exact_below: int = EXACT_BELOW) -> McNemarResult:
    """McNemar's test from the discordant counts B (A right, B wrong) and C (A wrong, B right).

    Under the null hypothesis that both models are equally accurate, each discordant image is a fair coin flip:
    b ~ Binomial(b + c, 1/2). With b + c < EXACT_BELOW the p-value is the exact two-sided binomial one,
    min(1, 2 P[X <= min(b, c)]) with X ~ Binomial(b + c, 1/2) (equal to scipy.stats.binomtest's two-sided value,
    the distribution being symmetric); otherwise the chi-square statistic with Edwards' (1948) continuity
    correction, (|b - c| - 1)^2 / (b + c), against chi-square with 1 degree of freedom. N (default b + c) is only
    recorded. Raises ValueError on negative counts.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c if n is None else n
    if b + c == 0:
        return McNemarResult(b, c, 0.0, 1.0, "no discordant images", n)
    if b + c < exact_below:
        p = min(1.0, 2.0 * float(binom.cdf(min(b, c), b + c, 0.5)))
        return McNemarResult(b, c, float(min(b, c)), p, "exact binomial", n)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemarResult(b, c, float(statistic), float(chi2.sf(statistic, df=1)), "chi-square, continuity-corrected",
                         n)


def mcnemar(correct_a: Any, correct_b: Any, exact_below: int = EXACT_BELOW) -> McNemarResult:
    """McNemar's test for classifiers A and B from their per-image correctness (bool [N] each, same images).

    Only discordant images (one model right, the other wrong) carry information; see `mcnemar_counts` for the
    p-value. Raises ValueError when the arrays differ in shape (not the same test set).
    """
    a, b_ = as_numpy(correct_a).astype(bool), as_numpy(correct_b).astype(bool)
    if a.shape != b_.shape:
        raise ValueError(f"cannot pair correctness of shape {a.shape} with {b_.shape}")
    return mcnemar_counts(int(np.sum(a & ~b_)), int(np.sum(~a & b_)), int(a.size), exact_below)


def matched_mcnemar(correct_a: Correctness, correct_b: Correctness, exact_below: int = EXACT_BELOW) -> MatchedMcNemar:
    """McNemar's test over seed-matched pairs: seed k of A against seed k of B, for the seeds both have.

    The pooled test adds the discordant counts b and c over the matched seeds and tests them once. Why pooled:
    every (image, seed) pair is a matched pair, and McNemar's test on pooled counts is the Cochran-Mantel-Haenszel
    test with one stratum per matched pair, so the seeds add evidence instead of splitting it into tests that are
    each too weak (and would themselves need a multiplicity correction). The caveat: the same image under
    different seeds is not an independent pair (hard images stay hard), so with several seeds the pooled p-value
    is somewhat optimistic; the per-seed tests are returned so a reader can see whether the seeds agree.

    Raises ValueError when the two models share no seed or their images differ in number.
    """
    seeds_a, seeds_b = by_seed(correct_a), by_seed(correct_b)
    seeds = sorted(set(seeds_a) & set(seeds_b))
    if not seeds:
        raise ValueError(f"no seed in common: {sorted(seeds_a)} and {sorted(seeds_b)}")
    per_seed = {s: mcnemar(seeds_a[s], seeds_b[s], exact_below) for s in seeds}
    b, c = sum(t.b for t in per_seed.values()), sum(t.c for t in per_seed.values())
    pooled = mcnemar_counts(b, c, sum(t.n for t in per_seed.values()), exact_below)
    return MatchedMcNemar(pooled, per_seed, seeds)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (Holm 1979).

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the i-th smallest is
    max over j <= i of min(1, (m - j + 1) p_(j)): monotone in the raw p-values and capped at 1. Rejecting where
    the adjusted value is below alpha controls the family-wise error rate at alpha. Raises ValueError on a
    p-value outside [0, 1] or NaN.
    """
    p = np.asarray(p_values, dtype=float)
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def resampled_accuracies(models: Mapping[str, Correctness], n_resamples: int = N_RESAMPLES,
                         seed: int = 0, resample_seeds: bool = True) -> np.ndarray:
    """Accuracy of every model in each of N_RESAMPLES paired bootstrap resamples: float array [n_resamples, M].

    Scheme (the pigeonhole bootstrap for a crossed seeds x images design, Owen 2007, Ann. Appl. Stat. 1(1)):
    each resample draws, from `numpy.random.default_rng(seed)` and in this order, for every model in the
    mapping's order that has S >= 2 seeds, S seed indices with replacement (`rng.integers(0, S, S)`), then one set
    of N image indices with replacement (`rng.integers(0, N, N)`) shared by every model, so that the models are
    compared on the same resampled images. A model's accuracy in the resample is the share of correct
    (seed, image) cells over its drawn seeds x drawn images. One seed: the plain bootstrap over test images.
    RESAMPLE_SEEDS False keeps every seed in every resample (no seed draws): the bootstrap over test images
    alone, whose interval leaves out the seed-to-seed spread.
    Raises ValueError when the models' image counts differ or there are no models.
    """
    if not models:
        raise ValueError("no models to resample")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    matrices = [np.stack(list(by_seed(c).values())).astype(np.float64) for c in models.values()]
    sizes = {m.shape[1] for m in matrices}
    if len(sizes) != 1:
        raise ValueError(f"models were tested on different numbers of images: {sorted(sizes)}")
    n_images = sizes.pop()
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, len(matrices)))
    for r in range(n_resamples):
        # Collapse each model's drawn seeds to per-image correct counts first: one pass over [S, N], not [S, N]^2.
        counts = []
        for matrix in matrices:
            n_seeds = matrix.shape[0]
            if n_seeds >= 2 and resample_seeds:
                weights = np.bincount(rng.integers(0, n_seeds, n_seeds), minlength=n_seeds).astype(np.float64)
                counts.append(weights @ matrix)
            else:
                counts.append(matrix.sum(axis=0))
        images = rng.integers(0, n_images, n_images)
        for m, (matrix, per_image) in enumerate(zip(matrices, counts, strict=True)):
            # Integer-valued sums divided once, so equal accuracies compare equal (ties in probability_best).
            out[r, m] = per_image[images].sum() / (matrix.shape[0] * n_images)
    return out


def bootstrap_accuracy(correct: Correctness, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                       seed: int = 0, resample_seeds: bool = True) -> Interval:
    """Accuracy (0..1) with a percentile bootstrap interval (Efron & Tibshirani 1993, section 13.3).

    The estimate is the share of correct (seed, image) cells; the interval's ends are the (1 - confidence)/2 and
    (1 + confidence)/2 quantiles (numpy's default linear interpolation) of the resampled accuracies of
    `resampled_accuracies` (over images with one seed; over seeds, then images, with two or more, unless
    RESAMPLE_SEEDS is False: then over images only, every seed kept). Fixed SEED: the same input gives the same
    interval. Raises ValueError as `by_seed` does, or for confidence not in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    seeds = by_seed(correct)
    estimate = float(np.mean(np.stack(list(seeds.values()))))
    draws = resampled_accuracies({"model": seeds}, n_resamples, seed, resample_seeds)[:, 0]
    low, high = np.percentile(draws, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(estimate, float(low), float(high), confidence, n_resamples,
                    "seeds x images" if len(seeds) >= 2 and resample_seeds else "images")


def probability_best(models: Mapping[str, Correctness], n_resamples: int = N_RESAMPLES,
                     seed: int = 0) -> dict[str, float]:
    """For each model, the share of paired bootstrap resamples in which it has the highest accuracy.

    Resamples as in `resampled_accuracies` (same images for every model). A resample where k models tie for the
    top gives each of them 1/k, so the shares sum to 1. Raises ValueError as `resampled_accuracies` does.
    """
    draws = resampled_accuracies(models, n_resamples, seed)
    top = draws == draws.max(axis=1, keepdims=True)
    shares = (top / top.sum(axis=1, keepdims=True)).mean(axis=0)
    return {name: float(share) for name, share in zip(models, shares, strict=True)}


def separation_estimate(b: int, c: int, n_images: int, n_seeds: int = 1, alpha: float = ALPHA, power: float = 0.8,
                        names: tuple[str, str] = ("A", "B")) -> SeparationEstimate:
    """How many image pairs would separate A from B at the observed discordance, by Connor's (1987) formula.

    B and C are the pooled discordant counts over N_SEEDS matched seeds of N_IMAGES images each, so the observed
    discordant proportions per (image, seed) pair are p10 = b / (n_images n_seeds), p01 = c / (n_images n_seeds).
    With psi = p10 + p01 and delta = p10 - p01, the number of pairs for a two-sided test at ALPHA with POWER is
    n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2 (Connor 1987, Biometrics 43(1),
    207-211, p. 209). Pass the level the pair is actually judged at (e.g. alpha / number of pairs, Holm's
    strictest step) for an estimate that survives the multiplicity correction. The extra pairs can come from
    more test images (at the current seeds) or more seeds (at the current images); the latter treats each
    seed's images as new pairs, which they are not quite (see `matched_mcnemar`), so it is a lower bound.
    When b == c the observed difference is zero and no sample size separates the models: the counts are None.
    Raises ValueError on negative counts, n_images or n_seeds < 1, or alpha / power outside (0, 1).
    """
    if b < 0 or c < 0 or n_images < 1 or n_seeds < 1:
        raise ValueError(f"need b, c >= 0 and n_images, n_seeds >= 1, got {b}, {c}, {n_images}, {n_seeds}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha}, {power}")
    first, second = names
    if b == c:
        return SeparationEstimate(None, None, None, f"{first} and {second} disagree equally often each way "
                                  f"({b} images each), so no number of extra test images would separate them.")
    pairs_now = n_images * n_seeds
    psi, delta = (b + c) / pairs_now, (b - c) / pairs_now
    z_alpha, z_power = norm.ppf(1 - alpha / 2), norm.ppf(power)
    needed = math.ceil((z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - delta**2)) ** 2 / delta**2)
    more_images = max(0, math.ceil(needed / n_seeds) - n_images)
    more_seeds = max(0, math.ceil(needed / n_images) - n_seeds)
    better, worse = (first, second) if b > c else (second, first)
    rates = f"they disagree on {100 * psi:.2f}% of images, {max(b, c)} to {min(b, c)} in {better}'s favour"
    if more_images == 0:
        sentence = (f"{better} vs {worse}: {rates}; about {needed:,} image pairs give {power:.0%} power at "
                    f"alpha={alpha:g}, which this test already has, so the gap is within what chance explains.")
    else:
        sentence = (f"To separate {better} from {worse} ({rates}) with {power:.0%} power at alpha={alpha:g} needs "
                    f"about {needed:,} image pairs: {more_images:,} more test images at {n_seeds} seed(s), or "
                    f"{more_seeds:,} more seeds on these {n_images:,} images (Connor 1987).")
    return SeparationEstimate(needed, more_images, more_seeds, sentence)
