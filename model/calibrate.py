"""Per-symbol calibration: a raw score becomes its tail probability in the symbol's own history.

A detector's raw scores live on each series' own scale: a calm forex pair and a busy coin give
the same detector scores a hundred times apart, and one threshold over raw scores flags one and
misses the other. So each score is compared with the scores the same symbol got on its previous
WINDOW bars, never with later ones:

- up to that history's (1 - TAIL)-quantile u, the tail probability is empirical: the share of
  the history at or above the score;
- beyond u it is extrapolated from the history's excesses over u with an exponential tail
  (peaks over threshold, the generalised Pareto with shape 0, as in SPOT): TAIL x exp(-(s - u)
  / mean excess). A score past anything in the history then still gets a probability, smaller
  the further past it is, instead of all sharing 1 / WINDOW.

A threshold on the result means the same on every symbol: "rarer than p in this symbol's last
day". A bar with fewer than MIN_HISTORY earlier scores gets probability 1 (no verdict without
a baseline, as in model/features.py).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WINDOW = 1440  # a day of 1-minute bars
MIN_HISTORY = 60
TAIL = 0.05
_CHUNK = 4096  # rows per sliding-window block: WINDOW x _CHUNK floats at a time


def tail_probabilities(raw: np.ndarray, window: int = WINDOW, min_history: int = MIN_HISTORY) -> np.ndarray:
    """For one symbol's raw scores in time order, each score's tail probability among the
    `window` scores before it (1.0 while fewer than `min_history` precede it)."""
    raw = np.asarray(raw, dtype=float)
    n = len(raw)
    result = np.ones(n)
    if n <= min_history:
        return result
    # history[i] = the `window` scores before row i + window (padded with NaN before the first row)
    padded = np.concatenate([np.full(window, np.nan), raw])
    for begin in range(min_history, n, _CHUNK):
        end = min(n, begin + _CHUNK)
        history = sliding_window_view(padded[begin:end + window - 1], window)  # rows begin..end-1
        result[begin:end] = _tail(history, raw[begin:end])
    return result


def following(history: np.ndarray, new: np.ndarray, window: int = WINDOW,
              min_history: int = MIN_HISTORY) -> np.ndarray:
    """The tail probabilities of one symbol's `new` scores (time order) that come after its
    `history` (time order), each among the `window` scores before it: what tail_probabilities
    gives them on the whole sequence at once. NaN where fewer than `min_history` scores precede,
    for a table that stores "no baseline yet" as null rather than as a probability of 1."""
    history = np.asarray(history, dtype=float)[-window:]
    joined = np.concatenate([history, np.asarray(new, dtype=float)])
    result = tail_probabilities(joined, window, min_history)[len(history):]
    result[np.arange(len(history), len(joined)) < min_history] = np.nan
    return result


def _tail(history: np.ndarray, scores: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(history)
    count = valid.sum(axis=1)
    u = np.nanquantile(history, 1 - TAIL, axis=1)
    at_or_above = (history >= scores[:, None]).sum(axis=1)
    empirical = (at_or_above + 1) / (count + 1)  # +1: the score itself, so never exactly 0
    over = history > u[:, None]  # NaN compares False
    excesses = np.where(over, history - u[:, None], 0.0).sum(axis=1)
    mean_excess = np.divide(excesses, over.sum(axis=1), out=np.zeros(len(scores)), where=over.any(axis=1))
    # A history without spread past u (all equal) gives the score's distance nothing to scale
    # by: then any score above u is as rare as the history allows, the empirical 1 / (count + 1).
    beyond = scores > u
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        extrapolated = np.where(mean_excess > 0, TAIL * np.exp(-(scores - u) / mean_excess), 1 / (count + 1))
    return np.where(beyond, np.minimum(empirical, extrapolated), empirical)


def surprise(probability: np.ndarray) -> np.ndarray:
    """-log10 of a tail probability: 2 is a 1-in-100 bar, 4 a 1-in-10,000 one. The scale
    thresholds and dashboards read; the floor keeps probabilities of 0 (underflow) finite."""
    return -np.log10(np.maximum(probability, 1e-300))
