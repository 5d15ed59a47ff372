"""Drift against the training distributions: the PSI's arithmetic, the thresholds a model keeps,
and a simulated market whose regime shifts (testkit.history: the simulator's trades made into bars
by the stream job's own aggregation)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lakewatch import settings as settings_module
from lakewatch.settings.simulator import RegimeShift
from model import drift
from model.features import FEATURES, build_features
from model.pyfunc import ANY_CLASS
from testkit.history import simulated_history

END = pd.Timestamp("2026-11-30 18:00", tz="UTC")
SHIFT = END - pd.Timedelta(hours=3, minutes=30)  # crypto's market changes at 14:30
MEASURED = pd.Timedelta(hours=6)  # the last 6 hours are live; training saw the 30 before
SHIFT_MS = int(SHIFT.value // 1_000_000)


def test_the_same_distribution_has_a_psi_near_zero_and_a_shifted_one_a_large_one():
    rng = np.random.default_rng(1)
    bins = drift._bins(rng.normal(0, 1, 20_000))
    assert len(bins["shares"]) == drift.BINS and sum(bins["shares"]) == pytest.approx(1)
    assert drift.psi(bins, rng.normal(0, 1, 2_000)) < 0.02
    assert drift.psi(bins, rng.normal(1, 1, 2_000)) > 0.5
    # a feature that is mostly one value (gap_minutes is 0 on nearly every bar) keeps one bin for it
    ties = drift._bins(np.r_[np.zeros(9_900), rng.uniform(1, 10, 100)])
    assert drift.psi(ties, np.zeros(500)) < 0.02


def test_thresholds_from_a_day_of_calm_hours_flag_few_later_calm_hours():
    # 21 class-features, each with a day of training hours and a calm PSI that wanders
    # log-normally, some features far more than others; 200 later hours of each
    rng = np.random.default_rng(3)
    spreads = np.linspace(0.2, 0.9, 21)
    days = [np.exp(rng.normal(-2, s, 24)) for s in spreads]
    thresholds = [max(drift.THRESHOLD_FLOOR, drift.tail(day)) for day in days]
    later = np.exp(rng.normal(-2, spreads, (200, 21)))
    flagged_hours = (later > np.array(thresholds)).any(axis=1).mean()
    assert flagged_hours < 0.02, flagged_hours
    # the largest of the same days' hours, even with half as much again, is too low a bar
    largest = np.array([1.5 * day.max() for day in days])
    assert (later > largest).any(axis=1).mean() > flagged_hours


def test_a_feature_that_never_moves_gets_the_floor():
    assert drift.tail(np.zeros(24)) <= drift.THRESHOLD_FLOOR
    assert drift.tail(np.array([0.1])) == 0.0  # one hour says nothing of a tail


@pytest.mark.parametrize("text, expected", [
    ("crypto@2026-11-30T14:30:00Z,volatility=3,trades=0.3", RegimeShift("crypto", SHIFT_MS, 3.0, 0.3)),
    ("forex@2026-11-30T14:30:00+00:00", RegimeShift("forex", SHIFT_MS)),
])
def test_a_regime_shift_is_read_from_its_setting(text, expected):
    assert RegimeShift.parse(text) == expected


@pytest.mark.parametrize("text", ["crypto", "crypto@tomorrow", "crypto@2026-11-30T14:30:00",
                                  "crypto@2026-11-30T14:30:00Z,speed=2", "crypto@2026-11-30T14:30:00Z,trades=0"])
def test_a_malformed_regime_shift_is_refused_with_its_form(text):
    with pytest.raises(ValueError, match="LAKEWATCH_SIM_REGIME_SHIFT"):
        RegimeShift.parse(text)


def test_a_regime_shift_of_an_unknown_asset_class_stops_the_settings():
    with pytest.raises(ValueError, match="LAKEWATCH_SIM_REGIME_SHIFT: unknown asset class 'bonds'"):
        settings_module.load({"LAKEWATCH_SIM_REGIME_SHIFT": "bonds@2026-11-30T14:30:00Z"})


@pytest.fixture(scope="module")
def shifted():
    """36 h of simulated market in which crypto's trades fall to 30 % and its volatility triples at
    14:30; the model inputs of every counted bar, and the drift reference of the first 30 h."""
    settings = dataclasses.replace(settings_module.load({}), sim_market_hours="always", sim_anomalies_per_hour=1.5,
                                   sim_regime_shift=f"crypto@{SHIFT.isoformat()},volatility=3,trades=0.3")
    bars, _ = simulated_history(settings, int(END.value // 1_000_000), 36, settings.sim_rate)
    features = build_features(bars)
    features = features[features["warm"] & ~features["pipeline_gap"]]
    live = features["window_start"] >= END - MEASURED
    return drift.fit(features[~live]), features[live]


def test_a_model_keeps_a_distribution_and_a_threshold_per_asset_class_and_feature(shifted):
    reference, _ = shifted
    assert set(reference["reference"]) == {ANY_CLASS, "stocks", "forex", "crypto"}
    for bins in reference["reference"].values():
        assert set(bins) == set(FEATURES)
        assert all(entry["threshold"] >= drift.THRESHOLD_FLOOR for entry in bins.values())
    # 30 h, less the first: its bars' baselines are still short, and no live hour has such bars
    assert reference["training_hours"] == 29


def test_a_regime_shift_drifts_its_class_in_the_hour_it_happens_and_nothing_else_drifts(shifted):
    reference, live = shifted
    hours = drift.hourly(live, reference["reference"])
    drifted = hours[hours["psi"] > hours["threshold"]]
    assert set(drifted["asset_class"]) == {"crypto"}, drifted
    assert drifted["window_start"].min() == SHIFT.floor("h")  # found at 15:05, 35 minutes after the shift
    assert {"count_z", "volume_z"} & set(drifted["feature"])  # fewer trades is what moved
