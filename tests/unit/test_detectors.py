"""The candidate detectors (model/detectors.py), as behaviours: a planted jump stands out, and
no bar's score depends on a later bar."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import detectors
from model.features import PATH_BARS, build_features
from tests.unit.test_model import synthetic_bars

JUMP_AT = 420


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    bars = synthetic_bars(minutes=600, seed=11)
    jump = (bars["symbol"] == "AAPL") & (bars["window_start"] == bars["window_start"].min()
                                          + pd.Timedelta(minutes=JUMP_AT))
    bars.loc[jump, ["close", "high"]] *= 1.03  # a 3 % jump; ordinary minutes move 0.1 %
    return build_features(bars)


def stretch(features: pd.DataFrame) -> pd.DataFrame:
    return features[features["window_start"] < features["window_start"].min() + pd.Timedelta(minutes=300)]


# The matrix profile compares shapes, z-normalised: in a random walk every 16-bar shape is about
# as far from its nearest earlier match, a jump's too. It finds broken patterns instead (below).
@pytest.mark.parametrize("name", [name for name in detectors.CANDIDATES if name != "matrix_profile"])
def test_a_planted_jump_scores_above_every_ordinary_bar_after_the_fitting_stretch(name, features):
    scores = pd.Series(detectors.CANDIDATES[name](stretch(features))(features), index=features.index)
    aapl = features[(features["symbol"] == "AAPL") & features["warm"]]
    later = aapl[aapl["window_start"] >= aapl["window_start"].min() + pd.Timedelta(minutes=300)]
    at = features["window_start"].min() + pd.Timedelta(minutes=JUMP_AT)
    jump = later["window_start"] == at
    # Against every bar that does not see the jump: the jump's bar and the next one (a return and
    # its reversal) see it, and the path's shapes hold it as long as it is in their window.
    sees = pd.Timedelta(minutes=PATH_BARS if name == "path_knn" else 2)
    ordinary = later[(later["window_start"] < at) | (later["window_start"] >= at + sees)]
    assert scores[later[jump].index].max() > scores[ordinary.index].quantile(0.99)


@pytest.mark.parametrize("name", list(detectors.CANDIDATES))
def test_a_bars_score_does_not_depend_on_later_bars(name, features):
    scorer = detectors.CANDIDATES[name](stretch(features))
    cut = features["window_start"].min() + pd.Timedelta(minutes=450)
    before = features[features["window_start"] < cut]
    full = pd.Series(scorer(features), index=features.index)
    assert np.allclose(scorer(before), full[before.index])


def test_the_matrix_profile_finds_a_broken_cycle_in_a_periodic_series():
    bars = synthetic_bars(minutes=600, seed=5, symbols=("AAPL",))
    minute = np.arange(600)
    path = 0.01 * np.sin(2 * np.pi * minute / 30)
    path[JUMP_AT:JUMP_AT + 12] = path[JUMP_AT]  # one cycle stalls for 12 minutes
    close = 100 * np.exp(path + np.random.default_rng(2).normal(0, 0.0005, 600))
    bars = bars.assign(open=np.r_[close[0], close[:-1]], close=close)
    bars = bars.assign(high=bars[["open", "close"]].max(axis=1), low=bars[["open", "close"]].min(axis=1))
    features = build_features(bars)
    scores = detectors.matrix_profile(stretch(features))(features)
    later = scores[300:]
    stalled = later[JUMP_AT - 300:JUMP_AT - 300 + 12 + detectors.MOTIF]
    assert stalled.max() > 2 * np.quantile(np.r_[later[:JUMP_AT - 300], later[JUMP_AT - 300 + 12 + detectors.MOTIF:]], 0.99)


def test_the_path_knn_scores_the_same_moves_alike_on_a_calm_and_a_busy_symbol():
    calm = synthetic_bars(minutes=400, seed=4, symbols=("AAPL",))
    # the same path, each move ten times as large: only the shape should count
    close = np.exp(10 * np.log(calm["close"].to_numpy()))
    busy = calm.assign(symbol="BINANCE:BTCUSDT", asset_class="crypto", open=np.r_[close[0], close[:-1]], close=close)
    busy = busy.assign(high=busy[["open", "close"]].max(axis=1), low=busy[["open", "close"]].min(axis=1))
    features = build_features(pd.concat([calm, busy], ignore_index=True))
    scores = pd.Series(detectors.path_knn(stretch(features))(features), index=features.index)
    by_symbol = {symbol: scores[rows].to_numpy() for symbol, rows in features.groupby("symbol").groups.items()}
    assert np.allclose(by_symbol["AAPL"], by_symbol["BINANCE:BTCUSDT"], rtol=1e-6)
    assert by_symbol["AAPL"].std() > 0
