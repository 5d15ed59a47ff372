"""Per-symbol calibration (model/calibrate.py): a threshold means the same on every symbol."""
from __future__ import annotations

import numpy as np

from model.calibrate import MIN_HISTORY, WINDOW, surprise, tail_probabilities


def scores(n: int = 4000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).exponential(size=n)


def test_a_symbol_ten_thousand_times_louder_gets_the_same_probabilities():
    quiet = scores()
    assert np.allclose(tail_probabilities(quiet), tail_probabilities(quiet * 10_000))


def test_a_probability_depends_only_on_earlier_scores():
    raw = scores()
    changed = raw.copy()
    changed[2500:] *= 50  # the future of row 2499 changes
    assert np.array_equal(tail_probabilities(raw)[:2500], tail_probabilities(changed)[:2500])


def test_on_a_steady_symbol_one_bar_in_a_hundred_is_rarer_than_one_in_a_hundred():
    p = tail_probabilities(scores(20_000))[WINDOW:]
    assert 0.007 <= (p <= 0.01).mean() <= 0.013
    assert 0.0004 <= (p <= 0.001).mean() <= 0.002


def test_a_score_past_its_whole_history_is_rarer_the_further_past_it_is():
    history = scores(1000)
    p = tail_probabilities(np.r_[history, history.max() * 2, history.max() * 20])
    assert p[-2] < 1 / 1000 and p[-1] < p[-2]
    assert surprise(p[-1:])[0] > 6


def test_no_verdict_without_a_baseline_and_a_flat_history_does_not_divide_by_zero():
    p = tail_probabilities(np.r_[np.zeros(MIN_HISTORY + 200), 1.0])
    assert (p[:MIN_HISTORY] == 1).all()
    assert p[-1] == 1 / (MIN_HISTORY + 201) or p[-1] < 0.01
    assert np.isfinite(surprise(p)).all()
