"""The MLflow pyfunc served as models:/lakewatch-anomaly@champion (logged as models-from-code).

Self-contained on purpose: MLflow stores a copy of this file with each model version, and
everything else the version needs (feature names, scoring rules, per-asset-class scales,
threshold) is in its params.json artifact, so an old version keeps scoring as it did when it
was trained, whatever the repo's code has become since.

Input: one row per bar, `asset_class` and the model's features (model/features.py builds them),
and whatever else the version's detector takes (params' `inputs`: path_knn's symbol and recent
returns).
Output per row: anomaly_score (the largest scaled feature contribution), is_anomaly (score >=
the trained threshold: one for every class when trained on labels, one per class when trained
for a target alert rate) and top_features (the largest contributions, most first).

A version of another candidate (params' `detector`, LAKEWATCH_MODEL_DETECTOR) keeps its fitted
detector as the artifact `detector`, pickled with its code (model/train.py): its score replaces
the largest contribution, and top_features still name the features furthest from their usual.
"""
from __future__ import annotations

import json
from pathlib import Path

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

TOP_FEATURES = 3
ANY_CLASS = "*"  # the scales of every class together: for a known class training had too few bars of
# The asset classes lakewatch trades (lakewatch.settings.ASSET_CLASSES, copied: this file imports
# nothing of lakewatch). Anything else is a caller's mistake, and a score for "bonds" would be a
# made-up answer, so it is a 400 naming the value, not a score on ANY_CLASS's scales.
ASSET_CLASSES = ("stocks", "forex", "crypto")


def validated(model_input, features: list[str], inputs: dict[str, str]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """(asset classes as text, features as a finite float matrix, the detector's other inputs),
    or an error serving answers with a 400 (MlflowException with INVALID_PARAMETER_VALUE).
    `inputs` maps each other input to "text" or "number"; a number may be missing (an earlier bar
    the symbol does not have), not infinite."""
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    missing = [c for c in ["asset_class", *features, *inputs] if c not in frame.columns]
    if missing:
        raise MlflowException(f"missing columns: {', '.join(missing)}", INVALID_PARAMETER_VALUE)
    classes = frame["asset_class"].astype(str).to_numpy()
    # The distinct classes of a batch are a handful: a set difference over them, not a per-row test.
    unknown = sorted(set(pd.unique(classes)) - set(ASSET_CLASSES))
    if unknown:
        raise MlflowException(f"unknown asset_class {', '.join(map(repr, unknown[:5]))}: "
                              f"known asset classes are {', '.join(ASSET_CLASSES)}", INVALID_PARAMETER_VALUE)
    try:
        values = frame[features].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise MlflowException(f"feature values must be numbers: {exc}", INVALID_PARAMETER_VALUE) from None
    finite = np.isfinite(values)
    if not finite.all():
        bad = [f for f, ok in zip(features, finite.all(axis=0)) if not ok]
        raise MlflowException(f"feature values must be finite numbers (no NaN, missing value or infinity): "
                              f"{', '.join(bad)}", INVALID_PARAMETER_VALUE)
    return classes, values, _other_inputs(frame, inputs)


def _other_inputs(frame: pd.DataFrame, inputs: dict[str, str]) -> pd.DataFrame | None:
    if not inputs:
        return None
    text = [c for c, kind in inputs.items() if kind == "text"]
    numbers = [c for c in inputs if c not in text]
    blank = [c for c in text if frame[c].isna().any()]
    if blank:  # a missing symbol would be scored as some typical symbol: a made-up answer
        raise MlflowException(f"must not be missing: {', '.join(blank)}", INVALID_PARAMETER_VALUE)
    try:
        values = frame[numbers].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise MlflowException(f"{', '.join(numbers)} must be numbers: {exc}", INVALID_PARAMETER_VALUE) from None
    infinite = np.isinf(values).any(axis=0)
    if infinite.any():
        raise MlflowException(f"must be finite numbers or missing: {', '.join(np.array(numbers)[infinite])}",
                              INVALID_PARAMETER_VALUE)
    return pd.concat([frame[text].astype(str).reset_index(drop=True),
                      pd.DataFrame(values, columns=numbers)], axis=1)


class Scorer:
    """A model version's params.json turned into arrays, so scoring is a few numpy operations
    (a single row must answer in well under the 15 ms serving budget)."""

    def __init__(self, params: dict, detector=None):
        self.features = list(params["rules"])
        # A fitted candidate (feature rows -> scores), or None: the ensemble's own score.
        self.detector = detector
        # What the detector takes besides the features (name -> "text" or "number"; none before path_knn).
        self.inputs = dict(params.get("inputs", {}))
        self.both = np.array([params["rules"][f][0] == "both" for f in self.features])
        self.weights = np.array([float(params["rules"][f][1]) for f in self.features])
        self.classes = list(params["scales"])
        self.scales = np.array([[params["scales"][c][f] for f in self.features] for c in self.classes])
        self.fallback = self.classes.index(ANY_CLASS)
        # One threshold (trained on labels), or one per class (trained for a target alert rate).
        threshold = params["threshold"]
        per_class = threshold if isinstance(threshold, dict) else {c: threshold for c in self.classes}
        self.thresholds = np.array([float(per_class.get(c, per_class.get(ANY_CLASS, np.inf))) for c in self.classes])

    def rows(self, asset_classes: np.ndarray) -> np.ndarray:
        """Each row's class index into scales and thresholds (ANY_CLASS's for a class training had too few bars of)."""
        index = {c: i for i, c in enumerate(self.classes)}
        return np.fromiter((index.get(c, self.fallback) for c in asset_classes), dtype=np.intp, count=len(asset_classes))

    def scaled(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Each feature's contribution over its class's scale (`rows`: each row's class index, from
        `rows()`): |x| or max(x, 0) per the rule, times its weight."""
        contribution = np.where(self.both, np.abs(values), np.maximum(values, 0.0)) * self.weights
        return contribution / self.scales[rows]

    def predict(self, model_input) -> pd.DataFrame:
        classes, values, others = validated(model_input, self.features, self.inputs)
        rows = self.rows(classes)  # once: the scales and the thresholds are both per class
        scaled = self.scaled(rows, values)
        if not len(scaled):
            scores = np.zeros(0)
        elif self.detector is None:
            scores = scaled.max(axis=1)
        else:
            bars = pd.DataFrame(values, columns=self.features)
            bars = bars if others is None else pd.concat([bars, others], axis=1)
            scores = np.asarray(self.detector(bars), dtype=float)
        top = np.array(self.features)[np.argsort(-scaled, axis=1, kind="stable")[:, :TOP_FEATURES]]
        return pd.DataFrame({"anomaly_score": scores, "is_anomaly": scores >= self.thresholds[rows],
                             "top_features": [",".join(row) for row in top]})


class AnomalyModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        detector = None
        if "detector" in context.artifacts:
            with open(context.artifacts["detector"], "rb") as file:
                detector = cloudpickle.load(file)
        self.scorer = Scorer(json.loads(Path(context.artifacts["params"]).read_text()), detector)

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return self.scorer.predict(model_input)


mlflow.models.set_model(AnomalyModel())
