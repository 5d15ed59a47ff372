"""Anomaly episodes: one event is one alert, however many bars it flags.

A spike flags one bar, but a volatility shift or a frozen feed flags a run of them, and counting
bars turns one event into dozens of "anomalies". The rule (docs/model.md), the same for the
evaluation's alerts (model/evaluate.py) and for the scorer's `anomalies` rows (model/score.py):

    a flagged bar of a symbol starting at most GAP after the start of that symbol's previous
    flagged bar continues its episode; any other flagged bar opens a new one.

So one unflagged minute inside an episode does not split it, two do. Each flagged row carries
its episode's first bar (`episode_start`), and counts of anomalies count the rows that open an
episode (window_start = episode_start).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MINUTE_NS = 60_000_000_000
GAP_NS = 2 * MINUTE_NS


def opens_episode(starts_ns: np.ndarray, previous_ns: int | None = None) -> np.ndarray:
    """For one symbol's flagged bars (window starts in ns, ascending): whether each opens an
    episode; `previous_ns` is the start of the symbol's flagged bar before these, if any."""
    before = np.concatenate(([previous_ns if previous_ns is not None else np.iinfo(np.int64).min // 2],
                             starts_ns[:-1])) if len(starts_ns) else starts_ns
    return starts_ns - before > GAP_NS


def episode_starts(verdicts: pd.DataFrame, carried: dict[str, list[int]]) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Each row's episode start (ns since the epoch; NaT-like -1 for an unflagged row) and the state
    to carry to the next call: symbol -> [episode start, start of its last flagged bar] (ns).

    `verdicts` has symbol, window_start and is_anomaly, each symbol's bars newer than those of
    earlier calls; `carried` is what the previous call returned ({} at first).
    """
    starts = pd.to_datetime(verdicts["window_start"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    flagged = verdicts["is_anomaly"].to_numpy(dtype=bool)
    symbols = verdicts["symbol"].to_numpy()
    result = np.full(len(verdicts), -1, dtype="int64")
    state = {symbol: list(value) for symbol, value in carried.items()}
    for symbol in pd.unique(symbols[flagged]):
        rows = np.flatnonzero(flagged & (symbols == symbol))
        rows = rows[np.argsort(starts[rows], kind="stable")]
        times = starts[rows]
        episode, last = state.get(symbol, (None, None))
        opens = opens_episode(times, last)
        # each row's episode: its own start where it opens one, else the last opening before it
        firsts = np.where(opens, times, -1)
        if not opens[0]:
            firsts[0] = episode
        result[rows] = np.maximum.accumulate(firsts)
        state[symbol] = [int(result[rows[-1]]), int(times[-1])]
    return result, state


REPEAT_BARS = 60  # an hour of 1-minute bars


def without_repeats(scores: np.ndarray, bars: int = REPEAT_BARS) -> np.ndarray:
    """One symbol's scores in time order, each less the highest of the `bars` scores before it
    (never below 0): the episode rule for scores, before any threshold. The first bar of a run of
    high scores keeps its score; the bars after it score only as far as they rise above it, so
    whatever threshold is chosen later, a run alerts once (and again only if it escalates)."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return scores
    padded = np.concatenate([np.full(bars, -np.inf), scores[:-1]])
    previous = np.lib.stride_tricks.sliding_window_view(padded, bars).max(axis=1)
    return np.maximum(scores - np.maximum(previous, 0.0), 0.0)
