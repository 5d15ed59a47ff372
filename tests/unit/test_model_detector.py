"""A model version of another candidate than the ensemble (LAKEWATCH_MODEL_DETECTOR): trained,
logged and registered by model/train.py, and loaded back from MLflow's registry as serving and the
scorer load it, it scores as its detector does."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from lakewatch import settings as settings_module
from lakewatch.settings.model import DETECTORS
from model import detectors
from model import train as training
from model.evaluate import bar_truth
from model.features import ANY_VERSION_INPUT, MODEL_INPUT, PATH_INPUT, build_features
from tests.unit.test_model import synthetic_bars

JUMPS = range(60, 600, 45)  # minutes with a planted 3 % jump in AAPL: both sides of the held-out cut


@pytest.fixture(scope="module")
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = synthetic_bars(minutes=600, seed=5)
    starts = bars["window_start"].min() + pd.to_timedelta(list(JUMPS), unit="min")
    jumped = (bars["symbol"] == "AAPL") & bars["window_start"].isin(starts)
    bars.loc[jumped, ["close", "high"]] *= 1.03
    labels = pd.DataFrame({"symbol": "AAPL", "asset_class": "stocks", "kind": "price_spike", "start_ts": starts,
                           "end_ts": starts + pd.Timedelta(minutes=1), "magnitude": 0.03})
    return build_features(bars), labels


@pytest.fixture()
def knn_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store puts artifacts under ./mlruns
    return dataclasses.replace(settings_module.load({}), mlflow_url=f"sqlite:///{tmp_path}/mlflow.db",
                               model_detector="knn", model_min_precision=0.5)


def trained(settings, features: pd.DataFrame, labels: pd.DataFrame) -> dict:
    train_x, train_labels, test_x, test_labels, cutoff = training.split(features, labels, 0.3)
    data = {"train_x": train_x, "train_labels": train_labels, "test_x": test_x, "test_labels": test_labels,
            "cutoff": cutoff, "test_fraction": 0.3, "mode": training.SUPERVISED}
    with training.start_run(settings) as run:
        fitted = training.fit_and_register(settings, data)
    return {**fitted, "run_id": run.info.run_id, "train_x": train_x, "train_labels": train_labels, "test_x": test_x}


def test_a_knn_version_loaded_from_the_registry_scores_as_the_knn_detector(knn_settings, history):
    result = trained(knn_settings, *history)
    train_x, test_x = result["train_x"], result["test_x"]
    served = mlflow.pyfunc.load_model(f"models:/{knn_settings.model_name}/{result['version']}")
    out = served.predict(test_x[list(MODEL_INPUT)])
    expected = detectors.knn(train_x[~bar_truth(train_x, result["train_labels"])])(test_x)
    np.testing.assert_allclose(out["anomaly_score"].to_numpy(), expected)
    assert (out["is_anomaly"] == (expected >= result["thresholds"]["knn"])).all()
    assert out["top_features"].str.split(",").str.len().eq(3).all()  # named by the ensemble's scales, as ever
    # every held-out jump is flagged (the bars after one, a reversal's, may be too: one episode)
    held_out = history[1].loc[history[1]["start_ts"] >= test_x["window_start"].min(), "start_ts"]
    flagged = test_x.loc[out["is_anomaly"].to_numpy() & (test_x["symbol"] == "AAPL").to_numpy(), "window_start"]
    assert len(held_out) >= 3 and held_out.isin(flagged).all()


def test_a_knn_version_logs_its_detector_and_metrics_under_its_name(knn_settings, history):
    result = trained(knn_settings, *history)
    run = mlflow.MlflowClient().get_run(result["run_id"]).data
    assert run.params["detector"] == "knn" and float(run.params["threshold_knn"]) > 0
    assert {"knn.test.recall", "knn.test.precision", "isolation_forest.test.f1"} <= set(run.metrics)
    assert not any(key.startswith("robust_ensemble.") for key in run.metrics)
    assert result["test"]["knn"]["recall"] > 0


@pytest.mark.parametrize("name", ["knn", "path_knn"])
def test_a_candidates_version_scores_without_lakewatch_code_importable(knn_settings, history, name):
    # MLflow keeps the pyfunc's file and the pickled detector: an old version must keep scoring
    # whatever model/detectors.py becomes, so the detector's code is in the pickle, not imported.
    knn_settings = dataclasses.replace(knn_settings, model_detector=name)
    result = trained(knn_settings, *history)
    rows = result["test_x"][list(ANY_VERSION_INPUT)].head(20)
    probe = (f"import sys, mlflow, pandas as pd; sys.modules['model'] = sys.modules['model.detectors'] = None; "
             f"sys.modules['lakewatch'] = None; mlflow.set_tracking_uri({knn_settings.mlflow_tracking_uri!r}); "
             f"m = mlflow.pyfunc.load_model('models:/{knn_settings.model_name}/{result['version']}'); "
             f"print(m.predict(pd.read_json(sys.stdin, orient='split'))['anomaly_score'].round(9).tolist())")
    done = subprocess.run([sys.executable, "-c", probe], input=rows.to_json(orient="split"), capture_output=True,
                          text=True, cwd=Path.cwd(), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    train_x = result["train_x"]
    expected = detectors.CANDIDATES[name](train_x[~bar_truth(train_x, result["train_labels"])])(rows)
    np.testing.assert_allclose(scores, np.round(expected, 9))


def test_a_path_knn_version_scores_one_served_row_from_the_recent_returns_it_carries(knn_settings, history):
    settings = dataclasses.replace(knn_settings, model_detector="path_knn")
    result = trained(settings, *history)
    train_x, test_x = result["train_x"], result["test_x"]
    served = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{result['version']}")
    assert served.metadata.get_input_schema().input_names() == [*MODEL_INPUT, *PATH_INPUT]
    expected = detectors.path_knn(train_x[~bar_truth(train_x, result["train_labels"])])(test_x)
    np.testing.assert_allclose(served.predict(test_x[list(ANY_VERSION_INPUT)])["anomaly_score"], expected)
    # a request holds single bars, not their symbol's history: each scores alone as in the batch
    for i in (0, 7, len(test_x) - 1):
        alone = served.predict(test_x.iloc[[i]][list(PATH_INPUT + MODEL_INPUT)])["anomaly_score"].iat[0]
        assert alone == pytest.approx(expected[i])
    # the jumps stand out: each held-out one outscores the AAPL bars whose window holds none
    aapl = (test_x["symbol"] == "AAPL").to_numpy()
    jumps = test_x["window_start"].isin(history[1]["start_ts"]).to_numpy() & aapl
    assert jumps.sum() >= 3
    assert expected[jumps].min() > np.median(expected[aapl & ~jumps])


def test_a_knn_version_trained_without_labels_flags_its_target_share_of_training_bars(knn_settings, history):
    features = history[0]
    train_x, _, test_x, _, cutoff = training.split(features, history[1].iloc[0:0], 0.3)
    data = {"train_x": train_x, "test_x": test_x, "cutoff": cutoff, "test_fraction": 0.3, "mode": training.UNSUPERVISED}
    settings = dataclasses.replace(knn_settings, model_target_alert_rate=0.02)
    with training.start_run(settings):
        fitted = training.fit_and_register(settings, data)
    served = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{fitted['version']}")
    flagged = served.predict(train_x[list(MODEL_INPUT)])["is_anomaly"]
    assert fitted["detector"] == "knn" and set(fitted["thresholds"]["knn"]) >= {"stocks", "crypto"}
    assert 0.01 <= flagged.mean() <= 0.03


@pytest.mark.parametrize("name", ["matrix_profile", "nonsense"])
def test_a_detector_that_cannot_score_one_bar_at_a_time_is_refused_in_one_sentence(name):
    with pytest.raises(ValueError, match=f"LAKEWATCH_MODEL_DETECTOR must be one of .*not '{name}'"):
        settings_module.load({"LAKEWATCH_MODEL_DETECTOR": name})


def test_every_servable_detector_is_a_candidate():
    assert set(DETECTORS) <= set(detectors.CANDIDATES)
