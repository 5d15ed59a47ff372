"""The candidate detectors, side by side behind one signature, so they are compared on equal terms.

Each candidate is fit on a stretch of history's features (model/features.py: the same rows
training, serving and the scorer see) and returns a function that scores feature rows, higher
meaning more anomalous. Fitting sees only that stretch: what a candidate scores later never
teaches it anything (NAB's rule of learning from the probationary part only, and the model's
train/held-out split). The rolling baselines inside the features look only backwards.

- robust_ensemble: lakewatch's own (model/ensemble.py), scales fit on the stretch;
- isolation_forest: scikit-learn's, on the absolute features (the baseline model/train.py logs);
- half_space_trees: river's streaming forest of random half-space splits (Tan et al. 2011);
- knn: pyod's k-nearest-neighbour detector: the distance to the 10th nearest fitting bar;
- path_knn: scikit-learn's nearest neighbours over the shape of the symbol's price path in its last
  PATH_BARS bars (model/features.py), as NAB's KNN CAD compares windows of a series' own values (Burnaev and
  Ishimtsev 2016);
- matrix_profile: stumpy's left matrix profile over each symbol's path (ret_z summed): a bar is as anomalous
  as the distance from the MOTIF bars ending at it to their nearest match among earlier bars (a
  discord, Yeh et al. 2016).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from model import ensemble
from model.features import FEATURES, PATH_INPUT, RECENT_RETURNS

Scorer = Callable[[pd.DataFrame], np.ndarray]
SEED = 7
FOREST_TREES = 100
MOTIF = 16  # bars per subsequence of the matrix profile
NEIGHBOURS = 10
ANY_SYMBOL = "*"
# What a candidate takes besides the features (model/pyfunc.py's params `inputs`: name -> "text" or
# "number"), because a served request holds single bars, not their symbol's history.
OTHER_INPUTS = {"path_knn": {c: "number" if c in RECENT_RETURNS else "text" for c in PATH_INPUT}}


def robust_ensemble(train: pd.DataFrame) -> Scorer:
    params = ensemble.model_params(ensemble.fit_scales(train, np.ones(len(train), dtype=bool)))
    return lambda rows: ensemble.score(rows, params)


def isolation_forest(train: pd.DataFrame) -> Scorer:
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=FOREST_TREES, random_state=SEED).fit(_matrix(train, absolute=True))
    return lambda rows: -forest.score_samples(_matrix(rows, absolute=True))


def half_space_trees(train: pd.DataFrame) -> Scorer:
    from river.anomaly import HalfSpaceTrees

    # Its splits are drawn inside each feature's limits: the stretch's 0.5-99.5 % range, widened
    # on each side so ordinary later values still fall inside.
    values = _matrix(train)
    low, high = np.quantile(values, 0.005, axis=0), np.quantile(values, 0.995, axis=0)
    pad = np.maximum(high - low, 1e-6)
    limits = {f: (float(lo - pad_), float(hi + pad_)) for f, lo, hi, pad_ in zip(FEATURES, low, high, pad)}
    trees = HalfSpaceTrees(n_trees=25, height=12, window_size=min(250, max(len(train) // 2, 2)), limits=limits,
                           seed=SEED)
    for row in values:  # two windows at least, so its reference mass is filled
        trees.learn_one(dict(zip(FEATURES, row)))
    return lambda rows: np.array([trees.score_one(dict(zip(FEATURES, row))) for row in _matrix(rows)])


def knn(train: pd.DataFrame) -> Scorer:
    # pyod's ECOD and COPOD were tried first: they rank a batch's rows against the training rows
    # and the batch together, so a bar's score depended on the bars scored with it (look-ahead).
    from pyod.models.knn import KNN

    model = KNN(n_neighbors=10).fit(_matrix(train))
    return lambda rows: model.decision_function(_matrix(rows))


def path_knn(train: pd.DataFrame) -> Scorer:
    """A bar is as anomalous as the mean distance from its symbol's last PATH_BARS closes, as a
    shape (log prices less their mean, in the symbol's usual return), to the NEIGHBOURS nearest
    such shapes of the fitting stretch. The other candidates see one bar's features; this sees
    how the last minutes moved together: a jump and its reversal, a trend that bends, a
    stall. The moves are the bar's PATH_INPUT (model/features.py), which look only backwards, so
    no bar is judged by what came after it, and a served request carries them."""
    from sklearn.neighbors import NearestNeighbors

    scales = _return_scales(train)
    shapes = _path_shapes(train, scales)
    # A fitting shape that starts before its symbol's first bar is part made up: not one to learn,
    # unless the stretch is too short to have enough others.
    whole = train[RECENT_RETURNS[-1]].notna().to_numpy()
    nearest = NearestNeighbors(n_neighbors=NEIGHBOURS).fit(shapes[whole] if whole.sum() >= NEIGHBOURS else shapes)
    return lambda rows: nearest.kneighbors(_path_shapes(rows, scales))[0].mean(axis=1)


def _return_scales(train: pd.DataFrame) -> dict[str, float]:
    """Each symbol's usual 1-minute move over the fitting stretch (the features' robust scale, in
    percent), so that shapes of calm and busy symbols compare: the median of its bars' scales."""
    usual = train.loc[train["warm"], ["symbol", "ret_usual_pct"]].groupby("symbol")["ret_usual_pct"].median()
    scales = {str(k): float(v) for k, v in usual.items() if np.isfinite(v) and v > 0}
    # a symbol training never saw (or never saw move) gets the typical symbol's
    scales[ANY_SYMBOL] = float(np.median(list(scales.values()))) if scales else 1.0
    return scales


def _path_shapes(rows: pd.DataFrame, scales: dict[str, float]) -> np.ndarray:
    """One row per bar: its symbol's log closes over the PATH_BARS bars ending at it, less their
    mean, in the symbol's usual return. A move before the symbol's first bar counts as none."""
    moves = np.nan_to_num(rows[list(RECENT_RETURNS[::-1])].to_numpy(dtype=float))  # oldest first
    usual = rows["symbol"].astype(str).map(scales).fillna(scales[ANY_SYMBOL]).to_numpy(dtype=float)
    path = np.cumsum(moves / usual.reshape(-1, 1), axis=1)
    return path - path.mean(axis=1, keepdims=True)


def matrix_profile(train: pd.DataFrame) -> Scorer:
    """Discords of each symbol's path (ret_z summed: a jump is a step in it, however its size compares),
    from stumpy's left matrix profile: each subsequence's nearest
    match is sought among the subsequences before it only (from the fitting stretch's first bar
    of that symbol on), so no bar is judged by what came after it."""
    import stumpy

    def score(rows: pd.DataFrame) -> np.ndarray:
        result = np.zeros(len(rows))
        for symbol, index in rows.groupby("symbol", sort=False).indices.items():
            mine = rows.iloc[index]
            earlier = _before(train, symbol, mine)
            series = np.cumsum(np.r_[earlier["ret_z"].to_numpy(dtype=float), mine["ret_z"].to_numpy(dtype=float)])
            if len(series) < 2 * MOTIF:
                continue
            left = stumpy.stump(series, MOTIF)[:, 2].astype(np.int64)  # left_I: -1 where none
            distance = _znorm_distance(series, left)
            # the subsequence ending at bar k starts at k - MOTIF + 1
            ending = np.r_[np.zeros(MOTIF - 1), distance]
            result[index] = ending[len(earlier):]
        return result

    return score


def _before(train: pd.DataFrame, symbol: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The fitting stretch's bars of `symbol` before the first of `rows` (one symbol's, in time
    order): the history a window over `rows` starts from, none of it after them."""
    return train[(train["symbol"] == symbol) & (train["window_start"] < rows["window_start"].min())]


def _znorm_distance(series: np.ndarray, match: np.ndarray) -> np.ndarray:
    """z-normalised Euclidean distance from each subsequence to its match (0 where none)."""
    windows = np.lib.stride_tricks.sliding_window_view(series, MOTIF)
    spread = windows.std(axis=1)
    # a flat subsequence is all zeros z-normalised: it matches another flat one exactly
    z = np.divide(windows - windows.mean(axis=1, keepdims=True), spread[:, None],
                  out=np.zeros_like(windows), where=spread[:, None] > 0)
    found = match >= 0
    distance = np.zeros(len(windows))
    distance[found] = np.linalg.norm(z[found] - z[match[found]], axis=1)
    return distance


CANDIDATES: dict[str, Callable[[pd.DataFrame], Scorer]] = {
    "robust_ensemble": robust_ensemble, "isolation_forest": isolation_forest,
    "half_space_trees": half_space_trees, "knn": knn, "path_knn": path_knn, "matrix_profile": matrix_profile,
}


def _matrix(rows: pd.DataFrame, absolute: bool = False) -> np.ndarray:
    values = rows[list(FEATURES)].to_numpy(dtype=float)
    return np.abs(values) if absolute else values
