"""The MLflow pyfunc served as models:/lakewatch-anomaly@champion (logged as models-from-code).

Self-contained on purpose: MLflow stores a copy of this file with each model version, and
everything else the version needs (feature names, scoring rules, per-asset-class scales,
threshold) is in its params.json artifact, so an old version keeps scoring as it did when it
was trained, whatever the repo's code has become since.

Input: one row per bar, `asset_class` and the model's features (model/features.py builds them).
Output per row: anomaly_score (the largest scaled feature contribution), is_anomaly (score >=
the trained threshold) and top_features (the largest contributions, most first).
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

TOP_FEATURES = 3
ANY_CLASS = "*"  # the scales for an asset class training never saw


def validated(model_input, features: list[str]) -> pd.DataFrame:
    """asset_class as text and the features as finite floats, or an error serving answers with a 400."""
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    missing = [c for c in ["asset_class", *features] if c not in frame.columns]
    if missing:
        raise MlflowException(f"missing columns: {', '.join(missing)}", INVALID_PARAMETER_VALUE)
    try:
        values = frame[features].astype(float)
    except (TypeError, ValueError) as exc:
        raise MlflowException(f"feature values must be numbers: {exc}", INVALID_PARAMETER_VALUE) from None
    if not np.isfinite(values.to_numpy()).all():
        raise MlflowException("feature values must be finite numbers (no NaN or infinity)", INVALID_PARAMETER_VALUE)
    values.insert(0, "asset_class", frame["asset_class"].astype(str).to_numpy())
    return values


def contributions(frame: pd.DataFrame, rules: dict[str, list]) -> pd.DataFrame:
    """Each feature's contribution before scaling: rules[name] = [direction, weight], where
    direction "both" counts |x| and "up" counts only x > 0."""
    return pd.DataFrame({name: weight * (frame[name].abs() if direction == "both" else frame[name].clip(lower=0))
                         for name, (direction, weight) in rules.items()}, index=frame.index)


def scaled_contributions(frame: pd.DataFrame, params: dict) -> pd.DataFrame:
    table = pd.DataFrame(params["scales"]).T[list(params["rules"])]
    classes = frame["asset_class"].where(frame["asset_class"].isin(table.index), ANY_CLASS)
    return contributions(frame, params["rules"]) / table.loc[classes].to_numpy()


def predict_frame(model_input, params: dict) -> pd.DataFrame:
    frame = validated(model_input, list(params["rules"]))
    scaled = scaled_contributions(frame, params)
    scores = scaled.max(axis=1).to_numpy()
    names = np.array(scaled.columns)
    top = names[np.argsort(-scaled.to_numpy(), axis=1, kind="stable")[:, :TOP_FEATURES]]
    return pd.DataFrame({"anomaly_score": scores, "is_anomaly": scores >= params["threshold"],
                         "top_features": [",".join(row) for row in top]})


class AnomalyModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.params = json.loads(Path(context.artifacts["params"]).read_text())

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return predict_frame(model_input, self.params)


mlflow.models.set_model(AnomalyModel())
