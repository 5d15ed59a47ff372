"""Training on a seeded simulator backfill that went the whole way: broker, stream, Delta,
then a real MLflow tracking server and registry."""
from __future__ import annotations

import urllib.request

import mlflow
import pytest

from lakewatch import settings as settings_module
from model import train as training
from model.evaluate import event_metrics
from model.features import MODEL_INPUT, build_features
from tests import lake
from tests.processes import free_port, start_mlflow, stop_process

pytestmark = pytest.mark.integration

HOURS = 48


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """48 h of simulated history in the lake, an MLflow server, and one training run."""
    state = tmp_path_factory.mktemp("model")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"LAKEWATCH_STATE_DIR": str(state / "var"), "LAKEWATCH_BROKER_PORT": str(free_port()),
                           "LAKEWATCH_STREAM_PORT": str(free_port()), "LAKEWATCH_MLFLOW_PORT": str(free_port()),
                           "LAKEWATCH_SIM_MARKET_HOURS": "always", "LAKEWATCH_SIM_ANOMALIES_PER_HOUR": "1.5"}.items():
            mp.setenv(key, value)
        for key in ("LAKEWATCH_KAFKA_BOOTSTRAP", "LAKEWATCH_MLFLOW_URL"):
            mp.delenv(key, raising=False)
        settings = settings_module.load()
        lake.fill_with_history(settings, hours=HOURS, rate=20)
        server = start_mlflow(settings)
        try:
            yield settings, training.train(settings)
        finally:
            stop_process(server)


def test_training_registers_a_champion_that_meets_the_quality_goal_on_held_out_data(trained):
    settings, result = trained
    assert result["promoted"]
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == result["version"]

    # The registered champion, loaded back from the registry, judged on the held-out part only.
    bars, labels = training.read_history(settings)
    _, _, test_x, test_labels, _ = training.split(build_features(bars), labels, 0.3)
    assert len(test_labels) >= 100 and set(test_labels["kind"]) == {
        "price_spike", "flash_crash", "volume_burst", "volatility_shift", "frozen_feed"}
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    champion = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    verdict = champion.predict(test_x[list(MODEL_INPUT)])
    metrics = event_metrics(test_x.assign(anomaly_score=verdict["is_anomaly"].astype(float).to_numpy()),
                            test_labels, 0.5)
    assert metrics["recall"] >= 0.9 and metrics["precision"] >= 0.8, metrics


def test_the_run_holds_params_metrics_plots_and_the_model(trained):
    settings, result = trained
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(result["run_id"])
    assert float(run.data.params["threshold_robust_ensemble"]) > 0
    for model in ("robust_ensemble", "isolation_forest"):
        for metric in ("recall", "precision", "f1", "pr_auc", "recall_frozen_feed", "delay_p50_s"):
            assert f"{model}.test.{metric}" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(result["run_id"])}
    assert {"pr_curve.png", "recall_per_kind.png"} <= artifacts
    assert run.data.tags["promoted"] == "True"


def test_retraining_on_the_same_data_does_not_move_the_champion(trained):
    settings, first = trained
    again = training.train(settings)
    assert not again["promoted"] and again["version"] != first["version"]
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == first["version"]


def test_the_tracking_server_exposes_prometheus_metrics(trained):
    settings, _ = trained
    with urllib.request.urlopen(settings.url(settings.mlflow_port, "/metrics"), timeout=10) as response:
        assert response.status == 200 and b"# TYPE" in response.read()
