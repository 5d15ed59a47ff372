"""Per-symbol calibration (model/calibrate.py): a threshold means the same on every symbol."""
from __future__ import annotations

import numpy as np
import pandas as pd

from model.calibrate import MIN_HISTORY, WINDOW, following, surprise, tail_probabilities
from model.score import calibrated


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


def test_scores_calibrated_a_few_at_a_time_get_what_the_whole_sequence_gives():
    """The scorer calibrates each cycle's bars against the scores kept so far (a history it
    trims to WINDOW): commit by commit, the result is the whole sequence's."""
    raw = scores(3000)
    whole = tail_probabilities(raw)
    kept, pieces = np.zeros(0), []
    for begin in range(0, len(raw), 37):
        new = raw[begin:begin + 37]
        pieces.append(following(kept, new))
        kept = np.r_[kept, new][-WINDOW:]
    joined = np.concatenate(pieces)
    assert np.isnan(joined[:MIN_HISTORY]).all()  # no baseline yet: null, not a probability of 1
    assert np.allclose(joined[MIN_HISTORY:], whole[MIN_HISTORY:])


def test_the_scorer_leaves_a_gap_bar_without_probability_and_out_of_the_history():
    at = pd.date_range("2026-12-01", periods=MIN_HISTORY + 3, freq="min", tz="UTC")
    features = pd.DataFrame({"symbol": ["AAA"] * len(at) + ["BBB"], "window_start": [*at, at[0]]})
    raw = np.r_[scores(len(at)), 1.0]
    gap = np.zeros(len(features), dtype=bool)
    gap[MIN_HISTORY + 1] = True
    probability, kept = calibrated({"BBB": scores(WINDOW, seed=2)}, features, raw, gap)
    assert np.isnan(probability[:MIN_HISTORY]).all() and np.isnan(probability[MIN_HISTORY + 1])
    ordinary = np.delete(raw[:-1], MIN_HISTORY + 1)
    assert np.array_equal(kept["AAA"], ordinary)
    assert probability[MIN_HISTORY + 2] == following(ordinary[:-1], ordinary[-1:])[0]
    assert len(kept["BBB"]) == WINDOW and kept["BBB"][-1] == 1.0 and 0 < probability[-1] < 1
