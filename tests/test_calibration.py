"""jobs/engine/measure/calibration.py on a 4-image, 3-class example worked out by hand."""

import math

import numpy as np
import pytest
import torch

from jobs.engine.measure import calibration as cal

# Top-class confidence / right?: 0.70 right, 0.62 wrong (says 1, is 2), 0.90 right, 0.45 wrong (says 1, is 0).
PROBS = np.array([[0.70, 0.20, 0.10],
                  [0.10, 0.62, 0.28],
                  [0.05, 0.05, 0.90],
                  [0.30, 0.45, 0.25]])
LABELS = np.array([0, 2, 2, 0])


def test_ece_with_15_bins_by_hand():
    # Each image alone in its bin of width 1/15, so ECE = mean |right - confidence| = (0.30 + 0.62 + 0.10 + 0.45) / 4.
    assert cal.expected_calibration_error(PROBS, LABELS) == pytest.approx(1.47 / 4)


def test_ece_with_two_bins_by_hand():
    # (0, 0.5]: the 0.45 image, wrong -> 0.45. (0.5, 1]: confidence (0.70 + 0.62 + 0.90) / 3 = 0.74, accuracy 2/3.
    expected = 1 / 4 * 0.45 + 3 / 4 * abs(2 / 3 - 0.74)
    assert cal.expected_calibration_error(PROBS, LABELS, n_bins=2) == pytest.approx(expected)
    assert expected == pytest.approx(0.1675)


def test_reliability_diagram_bins():
    bins = cal.reliability_diagram(PROBS, LABELS)
    assert len(bins) == 15 and bins[0].lower == 0.0 and bins[-1].upper == 1.0
    filled = {i: b for i, b in enumerate(bins) if b.count}
    # 0.45 in (6/15, 7/15], 0.62 in (9/15, 10/15], 0.70 in (10/15, 11/15], 0.90 in (13/15, 14/15].
    assert sorted(filled) == [6, 9, 10, 13]
    assert (filled[9].mean_confidence, filled[9].accuracy) == (pytest.approx(0.62), 0.0)
    assert (filled[13].mean_confidence, filled[13].accuracy) == (pytest.approx(0.90), 1.0)
    assert bins[0].mean_confidence is None and bins[0].accuracy is None
    # A confidence on a bin edge belongs to the bin it closes: (lower, upper].
    edge = cal.reliability_diagram(np.array([[0.5, 0.5]]), np.array([0]), n_bins=2)
    assert [b.count for b in edge] == [1, 0]


def test_nll_by_hand_and_clipping():
    expected = -(math.log(0.70) + math.log(0.28) + math.log(0.90) + math.log(0.30)) / 4
    assert cal.negative_log_likelihood(PROBS, LABELS) == pytest.approx(expected)
    assert expected == pytest.approx(0.734744, abs=1e-6)
    certain_and_wrong = np.array([[1.0, 0.0]])
    assert cal.negative_log_likelihood(certain_and_wrong, np.array([1])) == pytest.approx(-math.log(1e-12))


def test_brier_by_hand():
    # Per image, the sum over classes of (p - one_hot)^2:
    rows = [0.3**2 + 0.2**2 + 0.1**2,
            0.1**2 + 0.62**2 + 0.72**2,
            0.05**2 + 0.05**2 + 0.1**2,
            0.7**2 + 0.45**2 + 0.25**2]
    assert cal.brier_score(PROBS, LABELS) == pytest.approx(sum(rows) / 4)
    assert sum(rows) / 4 == pytest.approx(0.4557)
    assert cal.brier_score(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(2.0)  # Brier's range is 0..2


def test_summary_accepts_torch_and_matches_the_parts():
    summary = cal.calibration_summary(torch.tensor(PROBS, dtype=torch.float32), torch.tensor(LABELS))
    assert summary["ece"] == pytest.approx(1.47 / 4, abs=1e-6)
    assert summary["brier"] == pytest.approx(0.4557, abs=1e-6)
    assert summary["accuracy"] == 0.5 and len(summary["bins"]) == 15


@pytest.mark.parametrize("probs, labels, message", [
    (np.array([[2.0, -1.0]]), np.array([0]), "sum to 1"),  # logits, not probabilities
    (np.array([[2.0, 1.0]]), np.array([0]), "sum to 1"),  # positive logits
    (PROBS, np.array([0, 1, 3, 0]), "labels must lie"),
    (PROBS, LABELS[:3], "expected probabilities"),
    (PROBS, LABELS.astype(float), "integers"),
])
def test_bad_inputs_are_refused(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        cal.calibration_summary(probs, labels)
