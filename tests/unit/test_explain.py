"""The sentence on each anomaly says what its features measured: checked against the bars themselves."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from model.explain import explain, number, times
from model.features import HISTORY, build_features
from tests.unit.test_model import START, synthetic_bars

AT = 300  # the minute each test tampers with


def bar_at(bars: pd.DataFrame, minute: int = AT) -> dict:
    features = build_features(bars)
    return features[(features["symbol"] == "AAPL")
                    & (features["window_start"] == START + pd.Timedelta(minutes=minute))].iloc[0].to_dict()


def aapl(**changes) -> pd.DataFrame:
    bars = synthetic_bars(symbols=("AAPL",))
    for column, value in changes.items():
        bars.loc[AT, column] = value
    return bars


def test_usual_levels_are_the_medians_of_the_previous_60_bars():
    bars = aapl(volume=50_000.0, trade_count=3)
    m = bar_at(bars)
    before = bars.iloc[AT - HISTORY:AT]

    def a_median(value: float, values: pd.Series) -> bool:  # 60 values: between the middle two
        middle = values.sort_values().to_numpy()[HISTORY // 2 - 1:HISTORY // 2 + 1]
        return middle[0] - 1e-9 <= value <= middle[1] + 1e-9

    assert m["volume"] == 50_000 and a_median(m["volume_usual"], before["volume"])
    assert m["trade_count"] == 3 and a_median(m["trade_count_usual"], before["trade_count"])
    assert a_median(m["range_usual_pct"], np.log(before["high"] / before["low"]) * 100)


def test_a_volume_burst_in_a_thin_minute_reads_as_the_volume_ratio_and_the_few_trades():
    bars = aapl(volume=50_000.0, trade_count=3)
    m = bar_at(bars)
    sentence, evidence = explain("volume_z,count_z,ret_z", m)
    ratio = 50_000 / m["volume_usual"]
    assert sentence.startswith(f"volume 50,000, {times(ratio)} its 60-bar median ({number(m['volume_usual'])})")
    assert f"; 3 trades in a minute that usually has {number(m['trade_count_usual'])}" in sentence
    assert "price" not in sentence  # ret_z is third and ordinary: not said
    assert json.loads(evidence) == {
        "volume_z": {"z": round(m["volume_z"], 2), "value": 50_000.0, "usual": round(m["volume_usual"], 6)},
        "count_z": {"z": round(m["count_z"], 2), "value": 3.0, "usual": round(m["trade_count_usual"], 6)}}


def test_a_price_drop_says_how_far_and_how_many_usual_moves():
    bars = synthetic_bars(symbols=("AAPL",))
    previous_close = bars.loc[AT - 1, "close"]
    bars.loc[AT, ["open", "high"]] = previous_close
    bars.loc[AT, ["low", "close"]] = previous_close * 0.97
    m = bar_at(bars)
    sentence, _ = explain("ret_z,excursion_z", m)
    drop = -100 * np.log(0.97)
    assert m["ret_pct"] == pytest.approx(-drop)
    assert sentence.startswith(f"price down {number(drop)}% in the minute, {times(drop / m['ret_usual_pct'])} its usual move")
    assert "reached" not in sentence  # the close is where it went: the excursion would repeat the drop
    bars.loc[AT, "low"] = previous_close * 0.95  # down 5% inside the minute, 3% at its close
    m = bar_at(bars)
    assert explain("excursion_z,ret_z", m)[0] == (
        f"price reached {number(-100 * np.log(0.95))}% below the previous close within the minute, "
        f"{times(-100 * np.log(0.95) / m['ret_usual_pct'])} its usual move ({number(m['ret_usual_pct'])}%); "
        f"price down {number(drop)}% in the minute, {times(drop / m['ret_usual_pct'])} its usual move "
        f"({number(m['ret_usual_pct'])}%)")


def test_a_silence_before_the_bar_reads_in_seconds():
    bars = synthetic_bars(symbols=("AAPL",))
    bars.loc[AT, "first_trade_ts"] = bars.loc[AT, "window_start"] + pd.Timedelta(seconds=50)
    m = bar_at(bars)
    sentence, _ = explain("gap_z", m)
    assert m["silence_s"] == 51  # from 59 s into the bar before to 50 s into this one
    assert sentence == f"51 s without a trade before the bar, {times(51 / m['silence_usual_s'])} its 60-bar median (2 s)"


def test_a_further_feature_is_said_only_when_unusual_in_the_direction_its_rule_counts():
    m = bar_at(aapl(volume=50_000.0))
    m["range_z"] = -8.0  # an unusually narrow range: the model counts only wide ones
    sentence, evidence = explain("volume_z,range_z", m)
    assert "range" not in sentence and set(json.loads(evidence)) == {"volume_z"}
    m["range_z"] = 8.0
    assert "; high-low range" in explain("volume_z,range_z", m)[0]


def test_a_sentence_says_two_things_at_most_and_a_long_silence_once():
    bars = synthetic_bars(symbols=("AAPL",)).drop(index=range(AT - 6, AT))  # six minutes without a bar
    bars.loc[AT, ["volume", "trade_count"]] = [50_000.0, 3]
    m = bar_at(bars)
    sentence, evidence = explain("gap_minutes,gap_z,volume_z,count_z", m)
    assert sentence.startswith("the first bar after 6 minutes without one; volume 50,000")
    assert set(json.loads(evidence)) == {"gap_minutes", "volume_z"}


def test_a_bar_without_a_baseline_says_so_rather_than_inventing_one():
    m = bar_at(aapl(), minute=3)
    assert explain("volume_z", m) == ("unusual volume_z, with no baseline to compare it with", "{}")


@pytest.mark.parametrize("x, text", [(0.0, "0"), (0.0123, "0.012"), (2.44, "2.4"), (14.3, "14"),
                                     (843.5, "844"), (12_870.3, "12,870")])
def test_numbers_keep_two_significant_digits_and_thousands_separators(x, text):
    assert number(x) == text


def test_every_number_in_a_sentence_comes_from_the_bar():
    bars = aapl(volume=50_000.0, trade_count=400)
    m = bar_at(bars)
    sentence, _ = explain("volume_z,count_z", m)
    said = {float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*\.?\d*", sentence)}
    expected = {50_000.0, float(number(m["volume_usual"]).replace(",", "")), 400.0,
                float(number(m["trade_count_usual"])), 60.0,
                float(times(50_000 / m["volume_usual"])[:-1]), float(times(400 / m["trade_count_usual"])[:-1])}
    assert said == expected
