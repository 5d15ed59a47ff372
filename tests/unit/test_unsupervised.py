"""Training without labels: per-class thresholds for a target alert rate, and a gate on alert
rates and steadiness instead of F1 (model/unsupervised.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import pyfunc, unsupervised
from model.features import MODEL_INPUT, build_features
from model.pyfunc import ANY_CLASS
from tests.unit.test_model import START, synthetic_bars

RATE = 0.01


@pytest.fixture(scope="module")
def features():
    bars = synthetic_bars(minutes=2_000, symbols=("AAPL", "MSFT", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"))
    wild = bars["asset_class"] == "crypto"  # crypto's bars swing three times as wide
    for column in ("high", "low"):
        bars.loc[wild, column] = bars.loc[wild, "close"] + 3 * (bars.loc[wild, column] - bars.loc[wild, "close"])
    f = build_features(bars)
    return f[f["warm"]].reset_index(drop=True)


def test_each_asset_class_gets_the_target_share_of_its_own_bars_flagged(features):
    params = unsupervised.fit(features, RATE)
    assert set(params["threshold"]) == {ANY_CLASS, "stocks", "crypto"}
    flagged = pyfunc.Scorer(params).predict(features[list(MODEL_INPUT)])["is_anomaly"].to_numpy()
    rates = pd.Series(flagged).groupby(features["asset_class"]).mean()
    assert rates.to_dict() == pytest.approx({"stocks": RATE, "crypto": RATE}, abs=0.002)


def test_a_version_with_one_threshold_scores_as_before(features):
    params = unsupervised.fit(features, RATE)
    one = {**params, "threshold": 2.5}
    scored = pyfunc.Scorer(one).predict(features[list(MODEL_INPUT)])
    assert (scored["is_anomaly"] == (scored["anomaly_score"] >= 2.5)).all()


def test_alert_metrics_say_how_far_from_the_target_and_how_unsteady():
    hours = [START + pd.Timedelta(hours=h, minutes=m) for h in range(2) for m in range(100 // 2)]
    bars = pd.DataFrame({"window_start": hours * 2, "asset_class": ["stocks"] * 100 + ["crypto"] * 100})
    flagged = np.zeros(200, dtype=bool)
    flagged[[0, 50]] = True  # stocks: one in each hour, 1 % each
    flagged[[100, 101, 102]] = True  # crypto: three in its first hour, none in the second
    m = unsupervised.alert_metrics(bars, flagged, 0.01)
    assert m["alert_rate.stocks"] == pytest.approx(0.02) and m["alert_rate.crypto"] == pytest.approx(0.03)
    assert m["rate_error"] == pytest.approx((1.0 + 2.0) / 2)
    assert m["instability"] == pytest.approx((0.0 + 0.03 / 0.01) / 2)


@pytest.mark.parametrize("candidate, promoted, because", [
    ({"rate_error": 0.1, "instability": 1.0}, True, "closer to the target alert rate"),
    ({"rate_error": 0.3, "instability": 0.5}, False, "not closer to the target alert rate"),
    ({"rate_error": 0.1, "instability": 1.5}, False, "less steady hour to hour"),
])
def test_the_gate_without_labels_wants_closer_to_the_target_and_no_less_steady(candidate, promoted, because):
    verdict, why = unsupervised.promotion(candidate, {"rate_error": 0.3, "instability": 1.0})
    assert verdict is promoted and because in why
