"""Per-symbol features of 1-minute bars: the one function training and scoring both call.

Each feature compares a bar with the same symbol's previous bars (a rolling window of
HISTORY bars, never the bar itself), in robust units: (x - rolling median) / (1.4826 x
rolling MAD), so one wild bar does not blind the next ones and calm and busy symbols are on
one scale. A bar with fewer than MIN_HISTORY earlier bars gets zeros (`warm` = False): no
verdict without a baseline.

A gap of more than SESSION_BREAK minutes between two bars is a market closing (stocks at
night, forex at weekends), not a frozen feed: the return then is measured open to close
inside the bar, so a weekend's drift does not look like a price spike.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

HISTORY = 60  # bars of baseline per symbol
MIN_HISTORY = 15
SESSION_BREAK_MINUTES = 30
VOL_BARS = 5  # realised volatility over the last 5 bars
# Earlier bars a bar's features depend on: the MAD window looks at deviations from medians
# that look HISTORY further back. The scorer loads this many; tests prove it is enough.
LOOKBACK_BARS = 2 * HISTORY + VOL_BARS

# Model inputs, in this order. Signed where the sign means something (a drop vs a jump).
FEATURES = ("ret_z", "excursion_z", "range_z", "realised_vol_z", "volume_z", "count_z", "gap_z", "gap_minutes")
MODEL_INPUT = ("asset_class",) + FEATURES  # what the served model takes per bar
KEYS = ("symbol", "asset_class", "window_start", "window_end")
BAR_COLUMNS = ("symbol", "asset_class", "window_start", "window_end", "open", "high", "low", "close",
               "volume", "trade_count", "first_trade_ts", "last_trade_ts")

# Floors for the robust scale, so a feature that never moves (forex volume is always 0, a
# thinly traded symbol's returns are often exactly 0) does not divide by zero.
SCALE_FLOOR = {"ret": 1e-5, "range": 1e-5, "realised_vol": 0.05, "volume": 0.05, "count": 0.05, "gap": 0.1}


def _robust_stats(values: pd.Series, symbols: pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
    """Rolling median and robust scale (1.4826 x MAD) of each bar's HISTORY earlier values."""
    prior = values.groupby(symbols).shift(1)
    rolling = prior.groupby(symbols).rolling(HISTORY, min_periods=MIN_HISTORY)
    median = rolling.median().reset_index(level=0, drop=True)
    deviation = (prior - median).abs()
    mad = deviation.groupby(symbols).rolling(HISTORY, min_periods=MIN_HISTORY).median().reset_index(level=0, drop=True)
    return median, (1.4826 * mad).clip(lower=SCALE_FLOOR[name])


def _robust_z(values: pd.Series, symbols: pd.Series, name: str) -> pd.Series:
    median, scale = _robust_stats(values, symbols, name)
    return (values - median) / scale


def build_features(bars: pd.DataFrame) -> pd.DataFrame:
    """KEYS, FEATURES and `warm` for every bar, sorted by symbol and window_start.

    `bars` holds BAR_COLUMNS (more are ignored) for one or more symbols; to score new bars,
    pass them with LOOKBACK_BARS earlier bars of their symbols: their features then equal
    those computed over the whole history.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns: {', '.join(missing)}")
    b = bars.sort_values(["symbol", "window_start"]).reset_index(drop=True)
    symbols = b["symbol"]
    previous_start = b.groupby("symbol")["window_start"].shift(1)
    gap_minutes = ((b["window_start"] - previous_start).dt.total_seconds() / 60 - 1).fillna(0)
    session_break = gap_minutes > SESSION_BREAK_MINUTES
    previous_close = b.groupby("symbol")["close"].shift(1)
    reference = previous_close.where(~session_break & previous_close.notna(), b["open"])
    ret = np.log(b["close"] / reference)
    # How far the price went inside the bar, in return sigmas: a spike that reverts within
    # the minute leaves no trace in the close, only in the high or the low.
    excursion = np.maximum(np.log(b["high"] / reference), np.log(reference / b["low"]))
    silence = (b["first_trade_ts"] - b.groupby("symbol")["last_trade_ts"].shift(1)).dt.total_seconds()
    silence = silence.where(~session_break).fillna(0).clip(lower=0)
    realised = np.sqrt((ret ** 2).groupby(symbols).rolling(VOL_BARS, min_periods=1).mean()
                       .reset_index(level=0, drop=True))

    out = b[list(KEYS)].copy()
    ret_median, ret_scale = _robust_stats(ret, symbols, "ret")
    out["ret_z"] = (ret - ret_median) / ret_scale
    out["excursion_z"] = excursion / ret_scale
    out["range_z"] = _robust_z(np.log(b["high"] / b["low"]), symbols, "range")
    out["realised_vol_z"] = _robust_z(np.log(realised + 1e-9), symbols, "realised_vol")
    out["volume_z"] = _robust_z(np.log1p(b["volume"]), symbols, "volume")
    out["count_z"] = _robust_z(np.log1p(b["trade_count"].astype(float)), symbols, "count")
    out["gap_z"] = _robust_z(np.log1p(silence), symbols, "gap")
    out["gap_minutes"] = gap_minutes.where(~session_break, 0.0)
    history = b.groupby("symbol").cumcount()
    out["warm"] = history >= MIN_HISTORY
    feature_columns = list(FEATURES)
    out[feature_columns] = out[feature_columns].replace([np.inf, -np.inf], np.nan).fillna(0.0)
    out.loc[~out["warm"], feature_columns] = 0.0
    return out
