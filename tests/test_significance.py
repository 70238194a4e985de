"""tune/analysis/significance.py against hand computations and reference implementations on small fixed inputs."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from tune.analysis import significance as sig


def pair(b, c, both_right=5, both_wrong=3, size=None):
    """Correctness of models A and B with B images only A gets right and C only B gets right (SIZE images in all
    when given: the rest both get right)."""
    both_right = both_right if size is None else size - b - c - both_wrong
    a = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    other = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return np.array(a), np.array(other)


def test_mcnemar_exact_matches_scipy_binomtest():
    for b, c in [(7, 2), (0, 5), (12, 12), (3, 21)]:
        result = sig.mcnemar(*pair(b, c))
        assert (result.b, result.c, result.method) == (b, c, "exact binomial")
        assert result.p_value == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)
        assert result.n == b + c + 8


def test_mcnemar_chi_square_matches_hand_computation():
    result = sig.mcnemar(*pair(30, 12))
    # (|30 - 12| - 1)^2 / 42 = 289 / 42; chi-square(1) survival is erfc(sqrt(x / 2)).
    assert result.method == "chi-square, continuity-corrected"
    assert result.statistic == pytest.approx(289 / 42)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(289 / 84)), rel=1e-10)
    assert result.p_value == pytest.approx(0.008712, abs=5e-6)


def test_mcnemar_switches_method_at_25_discordant_images_and_handles_none():
    assert sig.mcnemar(*pair(14, 10)).method == "exact binomial"
    assert sig.mcnemar(*pair(15, 10)).method == "chi-square, continuity-corrected"
    none = sig.mcnemar(*pair(0, 0))
    assert (none.p_value, none.method) == (1.0, "no discordant images")
    with pytest.raises(ValueError, match="cannot pair"):
        sig.mcnemar([True, False], [True])


def test_matched_mcnemar_pairs_only_common_seeds_and_pools_counts():
    a0, b0 = pair(4, 1, size=30)
    a1, b1 = pair(6, 2, size=30)
    a2, b2 = pair(9, 9, size=30)
    model_a = {0: a0, 1: a1, 2: a2}
    model_b = {1: b1, 2: b2, 3: b0}
    result = sig.matched_mcnemar(model_a, model_b)
    assert result.seeds == [1, 2]
    assert (result.pooled.b, result.pooled.c) == (15, 11)
    assert result.pooled.n == 60
    assert result.per_seed[1] == sig.mcnemar(a1, b1)
    assert result.pooled.p_value == pytest.approx(math.erfc(math.sqrt((4 - 1) ** 2 / 26 / 2)))
    # Lists pair by position; a torch tensor is read like a numpy array.
    listed = sig.matched_mcnemar([a0, a1], torch.tensor(np.stack([b0, b1])))
    assert listed.seeds == [0, 1] and (listed.pooled.b, listed.pooled.c) == (10, 3)
    with pytest.raises(ValueError, match="no seed in common"):
        sig.matched_mcnemar({0: a0}, {1: b0})


def test_holm_matches_hand_computed_example():
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone).
    assert sig.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert sig.holm([0.7, 0.6]) == [1.0, 1.0]  # 0.6 x 2 = 1.2 capped at 1, then 0.7 raised to 1 (monotone)
    assert sig.holm([0.2]) == [0.2] and sig.holm([]) == []
    with pytest.raises(ValueError):
        sig.holm([0.1, 1.5])


def naive_resamples(per_model, n_resamples, seed):
    """The documented scheme written as plain loops: per resample, each multi-seed model's seed draws in order,
    then one image draw shared by all models; accuracy = correct cells / cells."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_resamples):
        seeds = [rng.integers(0, len(s), len(s)) if len(s) >= 2 else [0] for s in per_model]
        n = len(per_model[0][0])
        images = rng.integers(0, n, n)
        row = []
        for rows, chosen in zip(per_model, seeds, strict=True):
            right = sum(int(rows[s][i]) for s in chosen for i in images)
            row.append(right / (len(chosen) * n))
        out.append(row)
    return np.array(out)


def test_bootstrap_interval_is_stable_contains_estimate_and_matches_a_loop():
    rng = np.random.default_rng(42)
    seeds = [rng.random(40) < p for p in (0.8, 0.75, 0.85)]
    interval = sig.bootstrap_accuracy(seeds, n_resamples=300, seed=7)
    assert interval.scheme == "seeds x images"
    assert interval.estimate == pytest.approx(np.mean(seeds))
    assert interval.low < interval.estimate < interval.high
    assert (interval.low, interval.high) == pytest.approx((0.725, 0.9166666666666666))
    draws = naive_resamples([seeds], 300, 7)[:, 0]
    assert (interval.low, interval.high) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), abs=1e-12)
    assert sig.bootstrap_accuracy(seeds, n_resamples=300, seed=7) == interval

    one = sig.bootstrap_accuracy(seeds[0], n_resamples=300, seed=7)
    assert one.scheme == "images" and one.low <= one.estimate <= one.high
    assert (one.low, one.high) == pytest.approx(tuple(np.percentile(naive_resamples([[seeds[0]]], 300, 7)[:, 0],
                                                                    [2.5, 97.5])), abs=1e-12)


def test_probability_best_shares_resamples_and_splits_ties():
    rng = np.random.default_rng(3)
    strong = [rng.random(60) < 0.9 for _ in range(2)]
    weak = rng.random(60) < 0.6
    shares = sig.probability_best({"strong": strong, "weak": weak, "same": weak}, n_resamples=200, seed=1)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["strong"] > 0.99 and shares["weak"] == pytest.approx(shares["same"])
    assert sig.probability_best({"a": weak, "b": weak.copy()}, n_resamples=50) == {"a": 0.5, "b": 0.5}
    draws = naive_resamples([strong, [weak]], 200, 1)
    expected = np.mean([1.0 if s > w else 0.5 if s == w else 0.0 for s, w in draws])
    assert sig.probability_best({"strong": strong, "weak": weak}, 200, seed=1)["strong"] == pytest.approx(expected)


def test_separation_estimate_matches_connor_formula():
    # Connor (1987) via the R code of powerandsamplesize.com: p10 = 0.05, p01 = 0.45, two-sided 0.05, power 0.8: 23.
    done = sig.separation_estimate(10, 90, n_images=200)
    assert done.pairs_needed == 23 and done.more_images == 0 and "chance" in done.sentence
    z = NormalDist().inv_cdf
    psi, delta = 50 / 1000, 10 / 1000
    hand = math.ceil((z(0.975) * math.sqrt(psi) + z(0.8) * math.sqrt(psi - delta**2)) ** 2 / delta**2)
    estimate = sig.separation_estimate(30, 20, n_images=1000, names=("cnn", "vit"))
    assert estimate.pairs_needed == hand == 3923
    assert estimate.more_images == hand - 1000 and estimate.more_seeds == 3
    assert "3,923 image pairs" in estimate.sentence and estimate.sentence.startswith("To separate cnn from vit")
    two_seeds = sig.separation_estimate(60, 40, n_images=1000, n_seeds=2)
    assert two_seeds.pairs_needed == hand and two_seeds.more_images == math.ceil(hand / 2) - 1000
    assert sig.separation_estimate(5, 5, 100).pairs_needed is None
    with pytest.raises(ValueError):
        sig.separation_estimate(1, 2, 0)


def test_the_reports_pipeline_separates_a_far_model_and_says_what_would_separate_the_close_two():
    # The report's one statistics pipeline (tune/report/statistics.py compute) on these functions.
    from tune.report.predictions import Predictions, SweepPredictions
    from tune.report.statistics import compute

    rng = np.random.default_rng(5)
    truth = rng.random(500)
    close_a = [truth < 0.95, rng.random(500) < 0.95]
    close_b = [truth < 0.94, rng.random(500) < 0.94]
    far = [rng.random(500) < 0.5]

    def runs(seeds: list[np.ndarray]) -> dict[int, Predictions]:  # label 0 everywhere, predicted 0 where right
        return {k: Predictions(np.zeros(c.size, dtype=np.int64), (~c).astype(np.int64)) for k, c in enumerate(seeds)}

    predictions = SweepPredictions({"a": runs(close_a), "b": runs(close_b), "far": runs(far)}, {})
    stats = compute(["a", "b", "far"], predictions, n_resamples=100)
    assert len(stats.pairs) == 3 and stats.tested == 3 and [m.model for m in stats.models] == ["a", "b", "far"]
    assert stats.top is not None and (stats.top.a, stats.top.b) == ("a", "b") and not stats.top.separated
    assert stats.separation is not None and stats.separation.pairs_needed > 1000
    assert "separate" in stats.separation.sentence
    assert all(p.separated for p in stats.pairs if "far" in (p.a, p.b))
