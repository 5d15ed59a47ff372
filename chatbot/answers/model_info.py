"""Answers about the anomaly model: the champion's name, version and metrics, from MLflow's REST API
(the action server needs no MLflow client for three GET requests)."""
from __future__ import annotations

from datetime import datetime, timezone

import requests

from chatbot.answers import Question, words
from lakewatch.settings.model import CHAMPION_ALIAS, DEFAULT_DETECTOR, RETRAIN_EXPERIMENT, nab_metric

METRICS = (("recall", "event recall"), ("precision", "precision"), ("f1", "F1"), ("pr_auc", "PR-AUC"))
# What each detector a version can be (lakewatch.settings.model.DETECTORS) is, in a user's words.
KINDS = {"robust_ensemble": "a robust z-score ensemble", "isolation_forest": "an Isolation Forest (scikit-learn)",
         "half_space_trees": "a forest of half-space trees (river)",
         "knn": "a k-nearest-neighbour detector (pyod), scoring the distance to the 10th nearest training bar"}


def retrain_line(run: dict | None) -> str:
    """The last retrain's outcome in a sentence: what model/retrain.py recorded for the DAG run."""
    if not run:
        return " Airflow has not retrained it yet (the DAG lakewatch_retrain runs daily)."
    tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
    when = words.at(datetime.fromtimestamp(int(run["info"]["start_time"]) / 1000, timezone.utc))
    outcome = "succeeded" if tags.get("outcome") == "succeeded" else "FAILED"
    return f" The last retrain ({when}) {outcome}: {tags.get('summary', 'no summary recorded')}."


def real_data(metrics: dict[str, float], detector: str = DEFAULT_DETECTOR) -> str:
    """What the run says of the model on real data, in a sentence: NAB's score, or that it has none."""
    score = metrics.get(nab_metric(detector))
    if score is None:
        return (" It has not been measured on real data: training scores it on the Numenta Anomaly Benchmark "
                "when LAKEWATCH_NAB_DIR names a NAB checkout.")
    return (f" On real data, the Numenta Anomaly Benchmark's 58 series, it scores {score:.1f} (NAB's standard "
            "profile: 100 is perfect, 0 is NAB's null detector, and random cut forest scores 51.7).")


def _get(q: Question, path: str, **params) -> dict:
    response = requests.get(f"{q.settings.mlflow_tracking_uri}/api/2.0/mlflow/{path}", params=params, timeout=3)
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    return response.json()


def last_retrain(q: Question) -> dict | None:
    experiment = _get(q, "experiments/get-by-name", experiment_name=RETRAIN_EXPERIMENT).get("experiment")
    if not experiment:
        return None
    response = requests.post(f"{q.settings.mlflow_tracking_uri}/api/2.0/mlflow/runs/search", timeout=3,
                             json={"experiment_ids": [experiment["experiment_id"]], "max_results": 1,
                                   "order_by": ["attributes.start_time DESC"]})
    response.raise_for_status()
    return next(iter(response.json().get("runs", [])), None)


def describe(q: Question) -> str:
    name = q.settings.model_name
    try:
        version = _get(q, "registered-models/alias", name=name, alias=CHAMPION_ALIAS).get("model_version")
        run = _get(q, "runs/get", run_id=version["run_id"]).get("run", {}) if version else {}
        retrain = last_retrain(q)
    except requests.RequestException:
        return f"I can't reach MLflow at {q.settings.mlflow_tracking_uri} right now, so I can't say which model runs."
    if not version:
        return (f"No model is registered as {name}@{CHAMPION_ALIAS} yet: `make up` trains the first one once the lake "
                "has history, and `make train` trains another." + (retrain_line(retrain) if retrain else ""))
    metrics = {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}
    params = {p["key"]: p["value"] for p in run.get("data", {}).get("params", [])}
    registered = datetime.fromtimestamp(int(version["creation_timestamp"]) / 1000, timezone.utc)
    detector = params.get("detector", DEFAULT_DETECTOR)
    scored = ", ".join(f"{label} {metrics[f'{detector}.test.{key}']:.3f}" for key, label in METRICS
                       if f"{detector}.test.{key}" in metrics)
    text = (f"The anomalies come from {name} version {version['version']}, the champion in MLflow's registry "
            f"(registered {words.at(registered)}). It is {KINDS.get(detector, detector)} over each symbol's 1-minute "
            f"bar features ({params.get('features', 'see MLflow').replace(',', ', ')}).")
    if scored:
        text += f" On the simulator's held-out bars it scored {scored}"
        baseline = metrics.get("isolation_forest.test.f1") if detector != "isolation_forest" else None
        text += f" (an Isolation Forest baseline: F1 {baseline:.3f})." if baseline is not None else "."
    text += real_data(metrics, detector)
    if params.get("mode") == "unsupervised":
        rate = float(params.get("target_alert_rate", "nan"))
        text += (f" It was trained without labels (live data has none): each asset class's threshold flags "
                 f"{rate:.2%} of its bars")
        held_out = metrics.get(f"{detector}.test.alert_rate")
        text += (f"; on {int(params.get('test_bars', 0)):,} held-out bars it flagged {held_out:.2%}."
                 if held_out is not None else ".")
        if "train_bars" in params:
            text += f" Trained on {int(params['train_bars']):,} bars."
    elif "train_bars" in params:
        text += (f" Trained on {int(params['train_bars']):,} bars with {params.get('train_anomalies', '?')} "
                 "labelled anomalies.")
    return text + retrain_line(retrain) + f" Details: {q.settings.mlflow_tracking_uri}/#/models/{name}"
