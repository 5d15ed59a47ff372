"""Time context (model/seasonal.py): a daily cycle is not an anomaly, a break in it is."""
from __future__ import annotations

import numpy as np
import pandas as pd

from model.calibrate import tail_probabilities
from model.seasonal import gated, residual_z

POINTS_PER_DAY = 288  # 5-minute points, as most of NAB's series


def daily_cycle(days: int = 5, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    stamps = pd.date_range("2026-11-02", periods=days * POINTS_PER_DAY, freq="5min").to_numpy()
    phase = 2 * np.pi * np.arange(len(stamps)) / POINTS_PER_DAY
    return 10 * np.sin(phase) + np.random.default_rng(seed).normal(0, 0.1, len(stamps)), stamps


def test_the_same_time_on_earlier_days_predicts_a_daily_cycle_and_not_a_break_in_it():
    values, stamps = daily_cycle()
    spike = 4 * POINTS_PER_DAY + 100
    values[spike] += 3  # small beside the cycle's swing of 20, large beside its noise
    z = residual_z(values, stamps)
    assert np.isnan(z[:POINTS_PER_DAY]).all()  # no earlier day yet: no verdict
    ordinary = np.delete(z[2 * POINTS_PER_DAY:], spike - 2 * POINTS_PER_DAY)
    assert np.median(ordinary) < 1.5 and z[spike] > 20


def test_a_residual_depends_only_on_earlier_points():
    values, stamps = daily_cycle()
    changed = values.copy()
    changed[3 * POINTS_PER_DAY:] += 50
    same = slice(0, 3 * POINTS_PER_DAY)
    assert np.array_equal(residual_z(values, stamps)[same], residual_z(changed, stamps)[same], equal_nan=True)


def test_a_rise_the_hour_finds_rare_but_yesterday_had_is_no_longer_rare():
    values, stamps = daily_cycle()
    hourly = tail_probabilities(np.abs(np.diff(values, prepend=values[0])))  # a stand-in for a detector's
    combined = gated(hourly, values, stamps)
    assert (combined >= hourly).all()
    assert np.array_equal(combined[:POINTS_PER_DAY], hourly[:POINTS_PER_DAY])  # the first day: the hour only
    later = slice(2 * POINTS_PER_DAY, None)
    assert (combined[later] < 0.01).mean() < 0.5 * (hourly[later] < 0.01).mean() + 0.005


def test_without_an_earlier_day_the_probabilities_are_left_as_they_are():
    stamps = pd.date_range("2026-11-02", periods=200, freq="min").to_numpy()
    p = np.linspace(0.001, 1, 200)
    assert np.array_equal(gated(p, np.random.default_rng(0).normal(size=200), stamps), p)
