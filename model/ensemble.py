"""The robust statistical ensemble: a bar is as anomalous as its most anomalous feature.

Every feature is already in robust sigmas against the symbol's own recent bars
(model/features.py). Only growth counts for excursion, range, volatility and silence (a calm
bar is not an anomaly); both directions count for returns, volume and trade count (a feed
that suddenly trades a tenth as much is as suspicious as a burst). A frozen feed shows as
minutes without any bar (gap_minutes) and as a long silence inside one (gap_z).

Features do not have equally heavy tails, and not in every market (stock trade counts jump
at the open and the close), so each contribution is divided by its own 99.5th percentile
over the normal bars of its asset class in the training data: on normal bars, every feature
then passes a given level about as often. Its weight (RULES) then says how much of the alert
budget the feature gets. Anomalies show in a bar's price more than in its trade count, which a
burst of odd lots also raises, so the price features weigh more (benchmarks/bench_rule_weights.py
chose the weights; docs/model.md). Training fits the scales and the threshold (model/train.py);
the scoring itself lives in model/pyfunc.py, the file MLflow keeps with each model version.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from model import pyfunc
from model.features import FEATURES

# [direction, weight]: the weights are benchmarks/bench_rule_weights.py's, tuned on a 72 h realistic
# history and rounded; before them every weight was 1 but the missing minute's 3.
RULES = {"ret_z": ["both", 1.5], "excursion_z": ["up", 1.5], "range_z": ["up", 1.0], "realised_vol_z": ["up", 0.5],
         "volume_z": ["both", 1.0], "count_z": ["both", 0.5], "gap_z": ["up", 0.25], "gap_minutes": ["up", 0.75]}
assert list(RULES) == list(FEATURES), "every feature needs a rule"
SCALE_QUANTILE = 0.995


def rules_with_weights(weights) -> dict:
    """RULES with other weights, one per feature in FEATURES' order; the directions stay."""
    return {f: [RULES[f][0], float(w)] for f, w in zip(FEATURES, weights, strict=True)}


def contributions(features: pd.DataFrame, scales: dict | None = None) -> pd.DataFrame:
    """Each feature's contribution before its weight (pyfunc.Scorer with every weight 1), over
    its class's `scales` if given, else before its scale too: the scale measures the feature's
    own tail, so the weight is not divided out again."""
    unweighted = pyfunc.Scorer({**model_params(scales or {pyfunc.ANY_CLASS: {f: 1.0 for f in FEATURES}}),
                                "rules": rules_with_weights(np.ones(len(FEATURES)))})
    classes = features["asset_class"].astype(str).to_numpy()
    return pd.DataFrame(unweighted.scaled(unweighted.rows(classes), features[list(FEATURES)].to_numpy(dtype=float)),
                        columns=list(FEATURES), index=features.index)


def fit_scales(features: pd.DataFrame, normal: np.ndarray) -> dict[str, dict[str, float]]:
    """Per asset class (and pyfunc.ANY_CLASS), each contribution's SCALE_QUANTILE over normal bars, at least 1."""
    c = contributions(features)[normal]
    by_class = c.groupby(features.loc[normal, "asset_class"]).quantile(SCALE_QUANTILE).clip(lower=1.0)
    scales = {str(k): row.to_dict() for k, row in by_class.iterrows()}
    scales[pyfunc.ANY_CLASS] = c.quantile(SCALE_QUANTILE).clip(lower=1.0).to_dict()
    return scales


def model_params(scales: dict, threshold: float | dict[str, float] = np.inf) -> dict:
    """Everything a model version needs besides model/pyfunc.py (its params.json): the threshold
    is one number, or one per asset class (and pyfunc.ANY_CLASS)."""
    threshold = {c: float(t) for c, t in threshold.items()} if isinstance(threshold, dict) else float(threshold)
    return {"rules": RULES, "scales": scales, "threshold": threshold}


def score(features: pd.DataFrame, params: dict) -> np.ndarray:
    return pyfunc.Scorer(params).predict(features)["anomaly_score"].to_numpy()
