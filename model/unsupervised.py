"""Training without labels: live Finnhub data has no `anomaly_labels`, so no recall or precision
can pick a threshold or judge a model. Then:

- the threshold is set per asset class so that a target share of that class's own training bars
  is flagged (LAKEWATCH_MODEL_TARGET_ALERT_RATE): an analyst chooses how much attention the
  alerts may take, and each class gets its share whatever its volatility;
- a model is judged on the held-out bars by how close each class's alert rate stays to the
  target (`rate_error`, relative, averaged over the classes) and how steady it is hour to hour
  (`instability`: the standard deviation of the hourly rate over the target): a threshold that
  flags nothing for hours and then floods is as useless as one that floods all the time;
- the gate promotes a candidate that is closer to the target than the champion on the same
  held-out bars, without being less steady (a tolerance of STABILITY_TOLERANCE).

The scales are fit as with labels (model/ensemble.py), on every training bar: without labels,
the few anomalous ones cannot be left out, and the 99.5th percentile is robust to them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from model import ensemble
from model.pyfunc import ANY_CLASS

STABILITY_TOLERANCE = 1.1  # a candidate may be up to 10 % less steady than the champion


def fit(train_x: pd.DataFrame, target_rate: float, scores: np.ndarray | None = None) -> dict:
    """The ensemble's params with one threshold per asset class (and ANY_CLASS): the score that
    `target_rate` of the class's training bars reach. `scores` are another detector's of
    `train_x` (model/train.py), when the version is not the ensemble."""
    scales = ensemble.fit_scales(train_x, np.ones(len(train_x), dtype=bool))
    if scores is None:
        scores = ensemble.score(train_x, ensemble.model_params(scales))
    thresholds = {ANY_CLASS: float(np.quantile(scores, 1 - target_rate))}
    for asset_class, rows in train_x.groupby("asset_class").indices.items():
        thresholds[str(asset_class)] = float(np.quantile(scores[rows], 1 - target_rate))
    return ensemble.model_params(scales, thresholds)


def alert_metrics(bars: pd.DataFrame, flagged: np.ndarray, target_rate: float) -> dict[str, float]:
    """How a model's verdicts on `bars` (window_start, asset_class) sit against the target:
    per class its alert rate, and over the classes the mean rate_error and instability."""
    frame = pd.DataFrame({"asset_class": bars["asset_class"].to_numpy(), "flagged": flagged.astype(float),
                          "hour": bars["window_start"].dt.floor("h").to_numpy()})
    metrics, errors, spreads = {}, [], []
    for asset_class, part in frame.groupby("asset_class"):
        rate = part["flagged"].mean()
        hourly = part.groupby("hour")["flagged"].mean()
        metrics[f"alert_rate.{asset_class}"] = float(rate)
        errors.append(abs(rate - target_rate) / target_rate)
        spreads.append(float(hourly.std(ddof=0)) / target_rate if len(hourly) > 1 else 0.0)
    metrics["alert_rate"] = float(frame["flagged"].mean()) if len(frame) else 0.0
    metrics["rate_error"] = float(np.mean(errors)) if errors else 0.0
    metrics["instability"] = float(np.mean(spreads)) if spreads else 0.0
    return metrics


def promotion(candidate: dict, champion: dict) -> tuple[bool, str]:
    """Whether the candidate replaces the champion, and why, in one sentence."""
    if candidate["rate_error"] >= champion["rate_error"]:
        return False, (f"not closer to the target alert rate than the champion on the held-out bars "
                       f"({candidate['rate_error']:.0%} off against {champion['rate_error']:.0%})")
    if candidate["instability"] > STABILITY_TOLERANCE * champion["instability"]:
        return False, (f"closer to the target alert rate, but less steady hour to hour "
                       f"({candidate['instability']:.2f} against {champion['instability']:.2f})")
    return True, (f"closer to the target alert rate on the held-out bars ({candidate['rate_error']:.0%} off against "
                  f"{champion['rate_error']:.0%}) and as steady")
