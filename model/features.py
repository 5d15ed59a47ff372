"""Per-symbol features of 1-minute bars: the one function training and scoring both call.

Each feature compares a bar with the same symbol's previous bars (a rolling window of
HISTORY bars, never the bar itself), in robust units: (x - rolling median) / (1.4826 x
rolling MAD), so one wild bar does not blind the next ones and calm and busy symbols are on
one scale. A bar with fewer than MIN_HISTORY earlier bars gets zeros (`warm` = False): no
verdict without a baseline.

A gap of more than SESSION_BREAK minutes between two bars is a market closing (stocks at
night, forex at weekends), not a frozen feed: the return then is measured open to close
inside the bar, so a weekend's drift does not look like a price spike.

A silence that every other trading symbol shares is the pipeline's, not the market's: the stack
or the feed was down (a restart, the switch from backfilled history to live data, Finnhub's
socket dropping). Between two bars, the bar after it is treated like the first bar of a
session; inside a bar, the bar's move is not counted; and the bars cut short by it are marked
`pipeline_gap`: the scorer records their verdicts but leaves them out of anomaly counts
(docs/model.md, "Pipeline gaps").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

HISTORY = 60  # bars of baseline per symbol
MIN_HISTORY = 15
SESSION_BREAK_MINUTES = 30
# A silence at least this long that no other trading symbol broke is an outage of the pipeline.
# Shorter ones are too common by chance (a quiet second on every symbol at once) to tell apart.
OUTAGE_MIN_SECONDS = 5.0
OUTAGE_PATIENCE_MINUTES = 2
VOL_BARS = 5  # realised volatility over the last 5 bars
# Earlier bars a bar's features depend on: the MAD window looks at deviations from medians
# that look HISTORY further back. The scorer loads this many; tests prove it is enough.
LOOKBACK_BARS = 2 * HISTORY + VOL_BARS

# Model inputs, in this order. Signed where the sign means something (a drop vs a jump).
FEATURES = ("ret_z", "excursion_z", "range_z", "realised_vol_z", "volume_z", "count_z", "gap_z", "gap_minutes")
MODEL_INPUT = ("asset_class",) + FEATURES  # what the served model takes per bar
# What a candidate that judges the shape of the last minutes (model/detectors.py's path_knn) takes
# besides: the symbol, the bar's return and those of its PATH_BARS - 1 bars before, most recent
# first (`ret_pct_1` is the previous bar's), NaN where the symbol has no such bar. A served request
# carries them, because a request holds single bars and not their symbol's history.
PATH_BARS = 30  # of 10, 19, 30, 60 and 120, 30 scored best on NAB (docs/model.md)
RECENT_RETURNS = ("ret_pct",) + tuple(f"ret_pct_{k}" for k in range(1, PATH_BARS))
PATH_INPUT = ("symbol",) + RECENT_RETURNS
# Every column some version takes: what a client that does not know the version sends (MLflow
# passes a version the columns its signature names and drops the others).
ANY_VERSION_INPUT = MODEL_INPUT + PATH_INPUT
# What the features measure, in the units people read, each beside its usual level over the
# bar's baseline (the rolling median; for the return, its robust sigma): not model inputs, but
# what model/explain.py turns into the sentence on each anomaly. Percentages of the price,
# seconds, and the bar's own volume and trade count. The excursion is signed: up or down.
MEASURES = ("ret_pct", "ret_usual_pct", "excursion_pct", "range_pct", "range_usual_pct", "realised_vol_pct",
            "realised_vol_usual_pct", "volume", "volume_usual", "trade_count", "trade_count_usual",
            "silence_s", "silence_usual_s")
KEYS = ("symbol", "asset_class", "window_start", "window_end")
BAR_COLUMNS = ("symbol", "asset_class", "window_start", "window_end", "open", "high", "low", "close",
               "volume", "trade_count", "first_trade_ts", "last_trade_ts", "longest_silence_s", "longest_silence_end")

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


def _robust_z(values: pd.Series, symbols: pd.Series, name: str) -> tuple[pd.Series, pd.Series]:
    """The robust z of each bar, and the rolling median it is measured from."""
    median, scale = _robust_stats(values, symbols, name)
    return (values - median) / scale, median


def outages(b: pd.DataFrame, known_until: dict[str, int] | None = None) -> pd.DataFrame:
    """Per bar (b sorted by symbol and window_start), two flags, True, False or None (undecided):
    `before`, whether the silence from its symbol's previous bar to its first trade was an
    outage of the pipeline, and `inside`, whether its longest silence between two trades was.

    A silence of a symbol, from one trade to the next, is an outage when it lasts at least
    OUTAGE_MIN_SECONDS and every other symbol that was trading (that traded in the
    SESSION_BREAK_MINUTES before it began) kept quiet through most of it, with at least one such
    symbol to tell by. A symbol provably kept quiet between its bars and through each bar's
    longest silence; its quiet must cover half the silence (trades on either side of an outage
    fall at random distances from it) and OUTAGE_MIN_SECONDS.

    `known_until` (symbol -> epoch us, the scorer's watermarks) says how far each symbol's
    trades are in the lake: a symbol not yet past the silence's end cannot witness it, so the
    silence stays undecided until it is, or until the silent symbol itself is
    OUTAGE_PATIENCE_MINUTES past it (a market that closed meanwhile never catches up).
    Training knows everything (None).
    """
    flags = pd.DataFrame({"before": pd.Series(False, index=b.index, dtype=object),
                          "inside": pd.Series(False, index=b.index, dtype=object)})
    first, last = _epoch_us(b["first_trade_ts"]), _epoch_us(b["last_trade_ts"])
    inside_end = _epoch_us(b["longest_silence_end"].fillna(b["first_trade_ts"]))
    inside_start = inside_end - (b["longest_silence_s"].fillna(0.0).to_numpy() * 1e6).astype("int64")
    symbol = b["symbol"].to_numpy()
    same_as_previous = np.r_[False, symbol[1:] == symbol[:-1]]
    before_start = np.where(same_as_previous, np.r_[0, last[:-1]], first)  # no previous bar: no silence
    quiet = {}  # symbol -> (starts, ends): disjoint, in time order
    for name in np.unique(symbol):
        rows = np.flatnonzero(symbol == name)
        starts = np.column_stack([before_start[rows], inside_start[rows]]).ravel()
        ends = np.column_stack([first[rows], inside_end[rows]]).ravel()
        keep = ends > starts
        quiet[name] = (starts[keep], ends[keep], np.sort(np.r_[first[rows], last[rows]]))
    if len(quiet) < 2:
        return flags
    minimum_us, lookback_us = int(OUTAGE_MIN_SECONDS * 1e6), SESSION_BREAK_MINUTES * 60_000_000
    patience_us = OUTAGE_PATIENCE_MINUTES * 60_000_000
    for column, starts, ends in (("before", before_start, first), ("inside", inside_start, inside_end)):
        for row in np.flatnonzero(ends - starts >= minimum_us):
            l, f, own = int(starts[row]), int(ends[row]), symbol[row]
            needed = max(minimum_us, (f - l) // 2)
            patient = known_until is not None and known_until.get(own, 0) < f + patience_us
            verdict, witnesses = None, 0
            for other, (q_starts, q_ends, trades) in quiet.items():
                if other == own or np.searchsorted(trades, l - lookback_us) == np.searchsorted(trades, l, "right"):
                    continue  # itself, or not trading when the silence began
                if known_until is not None and known_until.get(other, 0) < f:
                    # Its trades up to the silence's end are not all in the lake: no evidence yet. Wait
                    # for them, or, once the silent symbol is past its patience, leave this one out.
                    verdict = "undecided" if patient else verdict
                    continue
                lo, hi = np.searchsorted(q_ends, l, "right"), np.searchsorted(q_starts, f)
                kept_quiet = (np.minimum(q_ends[lo:hi], f) - np.maximum(q_starts[lo:hi], l)).max(initial=0)
                if kept_quiet < needed:
                    verdict = False  # it traded through the silence: the market's silence, not the pipeline's
                    break
                witnesses += 1
            if verdict is None:
                verdict = witnesses > 0
            flags.iat[row, flags.columns.get_loc(column)] = None if verdict == "undecided" else verdict
    return flags


def _epoch_us(timestamps: pd.Series) -> np.ndarray:
    return ((timestamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")).to_numpy(dtype="int64")


def scoring_context(bars: pd.DataFrame, first_pending: dict) -> pd.DataFrame:
    """What build_features needs to score, from each symbol's first pending bar on (`first_pending`:
    symbol -> window_start), exactly as training would: LOOKBACK_BARS earlier bars of each of
    those symbols, every symbol's bars from SESSION_BREAK_MINUTES before the earliest of them on
    (the outage rule looks at the others), and everything after."""
    since = None
    for symbol, first in first_pending.items():
        starts = bars.loc[bars["symbol"] == symbol, "window_start"].sort_values(ignore_index=True)
        start = starts.iloc[max(0, int(starts.searchsorted(first)) - LOOKBACK_BARS)]
        since = start if since is None else min(since, start)
    if since is None:
        return bars.iloc[0:0]
    return bars[bars["window_start"] >= since - pd.Timedelta(minutes=SESSION_BREAK_MINUTES)]


def build_features(bars: pd.DataFrame, known_until: dict[str, int] | None = None) -> pd.DataFrame:
    """KEYS, FEATURES, MEASURES, the earlier returns of PATH_INPUT, `warm`, `pipeline_gap` and
    `undecided` for every bar, sorted by symbol and window_start (MEASURES' usual levels are NaN without a baseline). `undecided` bars wait for other symbols' trades (outages).

    `bars` holds BAR_COLUMNS (more are ignored) for one or more symbols; to score new bars,
    pass their scoring_context(): their features then equal those computed over the whole
    history.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns: {', '.join(missing)}")
    b = bars.sort_values(["symbol", "window_start"]).reset_index(drop=True)
    symbols = b["symbol"]
    previous_start = b.groupby("symbol")["window_start"].shift(1)
    gap_minutes = ((b["window_start"] - previous_start).dt.total_seconds() / 60 - 1).fillna(0)
    found = outages(b, known_until)
    outage, outage_inside = found["before"].eq(True), found["inside"].eq(True)
    session_break = (gap_minutes > SESSION_BREAK_MINUTES) | outage
    previous_close = b.groupby("symbol")["close"].shift(1)
    reference = previous_close.where(~session_break & previous_close.notna(), b["open"])
    # An outage inside the bar splits it between two prices (a restarted feed starts afresh): no move.
    ret = np.log(b["close"] / reference).where(~outage_inside, 0.0)
    # How far the price went inside the bar, in return sigmas: a spike that reverts within
    # the minute leaves no trace in the close, only in the high or the low.
    up, down = np.log(b["high"] / reference), np.log(reference / b["low"])
    excursion = np.maximum(up, down).where(~outage_inside, 0.0)
    silence = (b["first_trade_ts"] - b.groupby("symbol")["last_trade_ts"].shift(1)).dt.total_seconds()
    silence = silence.where(~session_break).fillna(0).clip(lower=0)
    realised = np.sqrt((ret ** 2).groupby(symbols).rolling(VOL_BARS, min_periods=1).mean()
                       .reset_index(level=0, drop=True))

    out = b[list(KEYS)].copy()
    ret_median, ret_scale = _robust_stats(ret, symbols, "ret")
    out["ret_z"] = (ret - ret_median) / ret_scale
    out["excursion_z"] = excursion / ret_scale
    bar_range = np.log(b["high"] / b["low"])
    out["range_z"], range_usual = _robust_z(bar_range, symbols, "range")
    out["realised_vol_z"], vol_usual = _robust_z(np.log(realised + 1e-9), symbols, "realised_vol")
    out["volume_z"], volume_usual = _robust_z(np.log1p(b["volume"]), symbols, "volume")
    out["count_z"], count_usual = _robust_z(np.log1p(b["trade_count"].astype(float)), symbols, "count")
    out["gap_z"], silence_usual = _robust_z(np.log1p(silence), symbols, "gap")
    out["gap_minutes"] = gap_minutes.where(~session_break, 0.0)
    # The medians are of transformed values; a monotonic transform's median is the median's transform.
    out["ret_pct"], out["ret_usual_pct"] = 100 * ret, 100 * ret_scale
    out["excursion_pct"] = 100 * excursion.where(up >= down, -excursion)
    out["range_pct"], out["range_usual_pct"] = 100 * bar_range, 100 * range_usual
    out["realised_vol_pct"], out["realised_vol_usual_pct"] = 100 * realised, 100 * np.exp(vol_usual)
    out["volume"], out["volume_usual"] = b["volume"], np.expm1(volume_usual)
    out["trade_count"], out["trade_count_usual"] = b["trade_count"].astype(float), np.expm1(count_usual)
    out["silence_s"], out["silence_usual_s"] = silence, np.expm1(silence_usual)
    earlier = {name: out["ret_pct"].groupby(symbols).shift(k) for k, name in enumerate(RECENT_RETURNS[1:], start=1)}
    out = pd.concat([out, pd.DataFrame(earlier)], axis=1)
    history = b.groupby("symbol").cumcount()
    out["warm"] = history >= MIN_HISTORY
    # The bar after an outage, and the one before it: the next bar's silence is the outage.
    next_bar = lambda flags: flags.groupby(symbols).shift(-1, fill_value=False).astype(bool)  # noqa: E731
    out["pipeline_gap"] = outage | outage_inside | next_bar(outage)
    undecided_before = found["before"].isna()
    out["undecided"] = undecided_before | found["inside"].isna() | next_bar(undecided_before)
    feature_columns = list(FEATURES)
    out[feature_columns] = out[feature_columns].replace([np.inf, -np.inf], np.nan).fillna(0.0)
    out.loc[~out["warm"], feature_columns] = 0.0
    return out
