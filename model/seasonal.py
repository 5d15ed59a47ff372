"""Time context: a bar is rare only if it is rare both for the last hour and for its time of day.

Every feature (model/features.py) compares a bar with the 60 before it. On a series with a
daily cycle that baseline calls every evening's rise an anomaly, and on NAB such series drew
most of knn's false alarms (docs/model.md). Here each value is also compared with the median of
the series' values at the same time of day on up to DAYS earlier days (those it has, within half
its sampling interval), in units of the median of its previous SCALE_POINTS such residuals.

`gated` combines the two: a bar is as rare as the less rare of its calibrated score
(model/calibrate.py) and its seasonal residual's tail probability. A series without a cycle
keeps its calibrated score wherever no earlier day is known.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from model.calibrate import MIN_HISTORY, tail_probabilities

DAYS = 3  # of 1, 2, 3 and 7 earlier days, 3 scored best on NAB (docs/model.md)
SCALE_POINTS = 288  # a day of NAB's 5-minute points
MIN_SCALE_POINTS = 30
SCALE_FLOOR = 1e-9  # a flat same-time history: any change is as rare as the history allows
DAY = np.timedelta64(86_400, "s")


def residual_z(values: np.ndarray, stamps: np.ndarray, days: int = DAYS) -> np.ndarray:
    """For one series in time order: |value - median of the same time on up to `days` earlier
    days|, over the median of the residuals before it. NaN where no earlier day is known yet, or
    fewer than MIN_SCALE_POINTS residuals precede it."""
    values = np.asarray(values, dtype=float)
    stamps = pd.to_datetime(stamps, utc=True).tz_convert(None).to_numpy()  # naive UTC: numpy has no zones
    n = len(values)
    if n < 2:
        return np.full(n, np.nan)
    tolerance = np.median(np.diff(stamps)) / 2
    earlier = np.full((days, n), np.nan)
    for k in range(1, days + 1):
        target = stamps - k * DAY
        j = np.clip(np.searchsorted(stamps, target), 0, n - 1)
        found = (np.abs(stamps[j] - target) <= tolerance) & (target >= stamps[0])
        earlier[k - 1] = np.where(found, values[j], np.nan)
    known = ~np.isnan(earlier).all(axis=0)
    baseline = np.full(n, np.nan)
    baseline[known] = np.nanmedian(earlier[:, known], axis=0)
    residual = np.abs(values - baseline)
    scale = pd.Series(residual).shift(1).rolling(SCALE_POINTS, min_periods=MIN_SCALE_POINTS).median().to_numpy()
    return residual / np.maximum(scale, SCALE_FLOOR)


def gated(probability: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """One series' tail probabilities (model/calibrate.py, time order), each raised to its seasonal
    residual's own tail probability where that is known: rare for the hour and for the time of day."""
    z = residual_z(values, stamps)
    known = np.flatnonzero(~np.isnan(z))
    result = np.asarray(probability, dtype=float).copy()
    if len(known) > MIN_HISTORY:
        result[known] = np.maximum(result[known], tail_probabilities(z[known]))
    return result
