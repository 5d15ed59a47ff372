"""Anomaly episodes (model/episodes.py): one event, one alert."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.episodes import episode_starts, without_repeats
from model.evaluate import best_threshold, event_metrics

T0 = pd.Timestamp("2026-12-04 14:00", tz="UTC")


def verdicts(flags: dict[str, str]) -> pd.DataFrame:
    """One row per minute from T0 per symbol; 'x' flags the minute, '.' does not."""
    return pd.DataFrame([{"symbol": symbol, "window_start": T0 + pd.Timedelta(minutes=i), "is_anomaly": c == "x"}
                         for symbol, marks in flags.items() for i, c in enumerate(marks)])


def openings(frame: pd.DataFrame, starts) -> list[str]:
    """The minutes (from T0) of the rows that open an episode, as symbol+minute."""
    opened = frame.assign(episode=starts)
    opened = opened[opened["is_anomaly"] & (opened["episode"] == opened["window_start"].astype("int64"))]
    return [f"{s}{int((t - T0) / pd.Timedelta(minutes=1))}" for s, t in zip(opened["symbol"], opened["window_start"])]


def test_a_run_of_flagged_bars_is_one_episode_opened_by_its_first_bar():
    frame = verdicts({"BTC": "..xxxxx.."})
    starts, _ = episode_starts(frame, {})
    assert openings(frame, starts) == ["BTC2"]
    assert set(starts[frame["is_anomaly"].to_numpy()]) == {(T0 + pd.Timedelta(minutes=2)).value}


def test_one_unflagged_minute_keeps_the_episode_two_split_it():
    frame = verdicts({"BTC": "xx.xx..xx"})
    starts, _ = episode_starts(frame, {})
    assert openings(frame, starts) == ["BTC0", "BTC7"]


def test_unflagged_bars_belong_to_no_episode():
    frame = verdicts({"BTC": "x.x.."})
    starts, _ = episode_starts(frame, {})
    assert list(starts[~frame["is_anomaly"].to_numpy()]) == [-1, -1, -1]


def test_symbols_have_episodes_of_their_own():
    frame = verdicts({"BTC": "xxx", "ETH": ".xx"})
    starts, _ = episode_starts(frame, {})
    assert sorted(openings(frame, starts)) == ["BTC0", "ETH1"]


def test_an_episode_continues_across_scorer_cycles():
    frame = verdicts({"BTC": "..xxx.x...x"})
    whole, _ = episode_starts(frame, {})
    carried, pieces = {}, []
    for part in (frame.iloc[:4], frame.iloc[4:7], frame.iloc[7:]):  # three cycles
        starts, carried = episode_starts(part, carried)
        pieces.extend(starts)
    assert pieces == list(whole)
    assert openings(frame, whole) == ["BTC2", "BTC10"]


def test_the_evaluation_counts_one_alert_per_episode():
    frame = verdicts({"BTC": "xx.xx..xx", "ETH": "...x.....x"})
    starts, _ = episode_starts(frame, {})
    scored = frame.assign(anomaly_score=frame["is_anomaly"].astype(float))
    labels = pd.DataFrame({"symbol": ["BTC"], "kind": ["price_spike"], "start_ts": [T0], "end_ts": [T0]})
    assert event_metrics(scored, labels, 0.5)["alerts"] == len(openings(frame, starts)) == 4


def test_without_repeats_a_run_of_high_scores_alerts_once_whatever_the_threshold():
    run = np.r_[np.zeros(10), [8.0, 7.5, 9.0, 8.2], np.zeros(100), [6.0]]
    kept = without_repeats(run, bars=60)
    assert kept[10] == 8.0 and kept[12] == pytest.approx(1.0)  # it escalated by 1
    assert (kept[[11, 13]] == 0).all()
    assert kept[-1] == 6.0  # more than an hour later: a new event
    for threshold in (0.5, 2.0, 7.0):
        assert (kept[:20] >= threshold).sum() <= 2


def test_without_repeats_looks_only_backwards():
    scores = np.random.default_rng(4).exponential(size=500)
    assert np.array_equal(without_repeats(scores)[:300], without_repeats(scores[:300]))


def test_a_threshold_for_scores_without_repeats_is_found_among_the_few_bars_above_zero():
    # Scores without repeats are 0 on most bars. Here 15 events score about 1, 300 other bars
    # less, and 2 false alarms 5. The right threshold sits among the 5 % of bars above 0, where
    # the scores' upper quantiles over all bars have only a few candidates.
    rng = np.random.default_rng(1)
    n = 6000
    scores = np.zeros(n)
    events = np.arange(100, n - 100, 400)
    scores[events] = rng.uniform(1.0, 1.2, len(events))
    others = np.setdiff1d(np.arange(n), np.r_[events, events + 1])
    noise = rng.choice(others, 302, replace=False)
    scores[noise[:300]], scores[noise[300:]] = rng.uniform(0, 0.9, 300), 5.0
    scored = pd.DataFrame({"symbol": "BTC", "window_start": T0 + pd.to_timedelta(np.arange(n), unit="min"),
                           "anomaly_score": scores})
    labels = pd.DataFrame({"symbol": "BTC", "kind": "price_spike", "start_ts": T0 + pd.to_timedelta(events, unit="min"),
                           "end_ts": T0 + pd.to_timedelta(events + 1, unit="min")})
    threshold, metrics = best_threshold(scored, labels, min_precision=0.8)
    assert 0.9 < threshold <= 1.0
    assert metrics["recall"] == 1.0 and metrics["precision"] >= 0.8
