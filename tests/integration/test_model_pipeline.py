"""The model end to end on a seeded simulator backfill that went the whole way through the
broker and the stream job into Delta: training with a real MLflow server and registry, then
real serving and the scorer writing `anomalies`."""
from __future__ import annotations

import dataclasses
import os
import shutil
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from lakewatch import tables
from lakewatch.settings.model import DEFAULT_DETECTOR, RETRAIN_EXPERIMENT, nab_metric
from model import train as training
from model.calibrate import following
from model.evaluate import event_metrics
from model.episodes import episode_starts
from model.explain import explain
from model.features import ANY_VERSION_INPUT, MODEL_INPUT, PATH_INPUT, build_features
from testkit import lake
from testkit.processes import (airflow_dags_test, private_settings, serving_health, start_mlflow, start_module,
                               stop_process, wait_for, wait_until_serving)

# The module's fixture streams 48 h of history through the real Spark job before the first
# test: about 2-3 minutes on an idle machine, more than 300 s on a loaded one.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

HOURS = 48


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """48 h of simulated history in the lake, an MLflow server, and one training run."""
    state = tmp_path_factory.mktemp("model")
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, state / "var", sim_anomalies_per_hour=1.5)
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
    _, _, test_x, test_labels, _ = training.split(build_features(bars), labels, training.TEST_FRACTION)
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
    assert run.data.tags["promoted"] == "True" and run.data.tags["gate"] == "the first version: there was no champion"
    # CI has no NAB checkout; with LAKEWATCH_NAB_DIR set, this module runs the NAB path instead.
    if settings.nab_dir is None:
        assert run.data.tags["real_data"] == "not measured" and nab_metric(DEFAULT_DETECTOR) not in run.data.metrics
    else:
        assert run.data.tags["real_data"] == f"NAB ({settings.nab_dir})" and nab_metric(DEFAULT_DETECTOR) in run.data.metrics


def test_retraining_on_the_same_data_does_not_move_the_champion(trained):
    settings, first = trained
    again = training.train(settings)
    assert not again["promoted"] and again["version"] != first["version"]
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_run(again["run_id"]).data.tags["gate"] == "not better than the champion on the held-out bars"
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == first["version"]


def test_the_tracking_server_exposes_prometheus_metrics(trained):
    settings, _ = trained
    with urllib.request.urlopen(settings.url(settings.mlflow_port, "/metrics"), timeout=10) as response:
        assert response.status == 200 and b"# TYPE" in response.read()


def anomalies(settings):
    return DeltaTable(str(tables.ANOMALIES.path(settings.lake_dir))).to_pandas()


def test_the_scorer_gives_every_final_bar_one_verdict_across_a_kill_9(trained):
    settings, result = trained
    serving = start_module(settings, "model.serve")  # the fixture's MLflow server is still up
    scorer = None
    try:
        wait_until_serving(settings, result["version"])
        small_steps = {"LAKEWATCH_SCORER_MAX_BARS": "3000"}  # a backlog in many commits, to kill in between
        scorer = start_module(settings, "model.score", small_steps)
        wait_for(lambda: len(anomalies(settings)) >= 6000, 120, "two commits of verdicts", every=0.2)
        os.killpg(scorer.pid, 9)
        scorer.wait()
        scorer = start_module(settings, "model.score", small_steps)
        expected = lake.final_bars(settings)
        wait_for(lambda: len(anomalies(settings)) >= expected, 180, f"{expected} verdicts", every=0.5)
    finally:
        for proc in (scorer, serving):
            if proc is not None:
                stop_process(proc)

    scored = anomalies(settings)
    assert len(scored) == expected
    assert not scored.duplicated(["symbol", "window_start"]).any()
    assert set(scored["model_version"]) == {result["version"]} and set(scored["model_name"]) == {settings.model_name}

    # The episodes written commit by commit, across the kill, are those of all the verdicts at once.
    ordered = scored.sort_values(["symbol", "window_start"]).reset_index(drop=True)
    whole, _ = episode_starts(ordered, {})
    assert [-1 if pd.isna(t) else t.value for t in ordered["episode_start"]] == list(whole)
    opened = int((ordered["episode_start"] == ordered["window_start"]).sum())
    print(f"{opened} anomaly episodes over {int(ordered['is_anomaly'].sum())} flagged bars")
    assert 0 < opened <= ordered["is_anomaly"].sum()

    # So are the tail probabilities: each bar's among its symbol's earlier scores, null for a gap bar.
    for symbol, group in ordered.groupby("symbol"):
        ordinary = group["excluded_reason"].isna()
        whole_history = following(np.zeros(0), group.loc[ordinary, "anomaly_score"].to_numpy())
        assert np.allclose(group.loc[ordinary, "tail_probability"].to_numpy(dtype=float), whole_history,
                           equal_nan=True), symbol
        assert group.loc[~ordinary, "tail_probability"].isna().all(), symbol
    assert ordered["tail_probability"].notna().mean() > 0.9  # an hour without a baseline, of days

    # Every injected anomaly's bars have verdicts, and (held out or not) nearly all are caught.
    labels = training.read_history(settings)[1]
    flagged = scored[scored["is_anomaly"]]
    caught = 0
    for label in labels.itertuples():
        inside = scored[(scored["symbol"] == label.symbol) & (scored["window_start"] >= label.start_ts.floor("min"))
                        & (scored["window_start"] < label.end_ts)]
        assert len(inside) > 0 or label.kind == "frozen_feed", label  # a frozen feed has no bars inside
        hits = flagged[(flagged["symbol"] == label.symbol) & (flagged["window_start"] >= label.start_ts.floor("min"))
                       & (flagged["window_start"] < label.end_ts + pd.Timedelta(minutes=2))]
        caught += not hits.empty
    assert caught / len(labels) >= 0.9

    # Every flagged bar, and no other, says why: the sentence of the features it was scored on,
    # which are those of the whole history (the scorer builds them from a window of it).
    assert (scored["explanation"].notna() == scored["is_anomaly"]).all()
    measured = build_features(training.read_history(settings)[0]).set_index(["symbol", "window_start"])
    for row in flagged.itertuples():
        bar = measured.loc[(row.symbol, row.window_start)].to_dict()
        assert (row.explanation, row.evidence) == explain(row.top_features, bar), row



def lake_copy(settings, state, tables_copied, **changes):
    """The same settings over a lake of their own holding copies of `tables_copied` (a copy:
    DuckDB reads only inside the lake folder, a link out of it is refused)."""
    copy = dataclasses.replace(settings, state_dir=state, **changes)
    for table in tables_copied:
        shutil.copytree(table.path(settings.lake_dir), table.path(copy.lake_dir))
    copy.log_dir.mkdir(parents=True, exist_ok=True)
    return copy


def test_the_scorer_follows_a_path_knn_champion_sending_each_bar_with_its_recent_returns(trained, tmp_path_factory):
    # A version of another kind takes other columns: the scorer reads them from serving's /health,
    # so its verdicts are the detector's on the whole history, each bar sent alone with its path.
    settings, _ = trained
    path_knn = lake_copy(settings, tmp_path_factory.mktemp("path-knn"), (tables.BARS_1M, tables.ANOMALY_LABELS),
                         model_name="lakewatch-anomaly-path-knn", model_detector="path_knn")
    result = training.train(path_knn)
    assert result["promoted"]
    env = {"LAKEWATCH_STATE_DIR": str(path_knn.state_dir), "LAKEWATCH_MODEL_NAME": path_knn.model_name}
    serving = start_module(path_knn, "model.serve", env)
    scorer = None
    try:
        assert wait_until_serving(path_knn, result["version"])["inputs"] == [*MODEL_INPUT, *PATH_INPUT]
        scorer = start_module(path_knn, "model.score", env)
        expected = lake.final_bars(path_knn)
        wait_for(lambda: lake.count(path_knn, "anomalies") >= expected, 180, f"{expected} verdicts", every=0.5)
    finally:
        for proc in (scorer, serving):
            if proc is not None:
                stop_process(proc)

    scored = anomalies(path_knn).set_index(["symbol", "window_start"]).sort_index()
    assert len(scored) == expected and not scored.index.duplicated().any()
    assert set(scored["model_version"]) == {result["version"]} and set(scored["model_name"]) == {path_knn.model_name}
    mlflow.set_tracking_uri(path_knn.mlflow_tracking_uri)
    champion = mlflow.pyfunc.load_model(f"models:/{path_knn.model_name}@champion")
    whole = build_features(training.read_history(path_knn)[0])
    in_process = whole.assign(score=champion.predict(whole[list(ANY_VERSION_INPUT)])["anomaly_score"].to_numpy())
    in_process = in_process.set_index(["symbol", "window_start"])["score"].reindex(scored.index)
    # scikit-learn's distances come out of batches of other sizes here: equal to the 7th digit
    np.testing.assert_allclose(scored["anomaly_score"].to_numpy(dtype=float), in_process.to_numpy(), rtol=1e-6)
    assert 0 < scored["is_anomaly"].sum() < len(scored)


# ---- the retrain DAG (airflow/dags/lakewatch_retrain.py), run by Airflow's own `dags test` ----

def dags_test(settings, **env) -> None:
    done, seconds = airflow_dags_test(settings, **env)
    print(f"airflow dags test: exit {done.returncode} in {seconds:.1f} s; log: {settings.log_dir}/airflow-dags-test.log")


def last_report(settings) -> dict[str, str]:
    """The tags of the newest run in the experiment where each DAG run records its outcome."""
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(RETRAIN_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].data.tags


@pytest.fixture(scope="module")
def serving(trained):
    settings, _ = trained
    proc = start_module(settings, "model.serve")
    try:
        yield proc
    finally:
        stop_process(proc)


def test_the_retrain_dag_keeps_the_champion_when_the_gate_says_no(trained, serving):
    settings, _ = trained
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    before = client.get_model_version_by_alias(settings.model_name, "champion").version
    dags_test(settings)
    report = last_report(settings)
    assert report["outcome"] == "succeeded" and report["promoted"] == "False", report
    assert "not better than the champion" in report["summary"]
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == before
    assert report["airflow_run"].startswith("manual__")  # the DAG run's own id, rendered by Airflow
    trained_run = client.get_run(report["training_run"])
    assert trained_run.data.tags["airflow_run"] == report["airflow_run"] and trained_run.data.tags["promoted"] == "False"
    assert "robust_ensemble.test.f1" in trained_run.data.metrics


def test_the_retrain_dag_moves_the_alias_and_serving_follows_when_the_gate_passes(trained, serving):
    settings, _ = trained
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    # Without a champion the gate passes (the first version); serving keeps what it loaded.
    client.delete_registered_model_alias(settings.model_name, "champion")
    dags_test(settings)
    report = last_report(settings)
    assert report["outcome"] == "succeeded" and report["promoted"] == "True", report
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == report["version"]
    assert (serving_health(settings) or {}).get("version") == report["version"]  # the confirm step waited for it


def test_a_step_failing_twice_fails_the_retrain_dag_and_says_why(trained):
    settings, _ = trained
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    before = client.get_model_version_by_alias(settings.model_name, "champion").version
    dags_test(settings, LAKEWATCH_RETRAIN_MAX_LAKE_AGE_SECONDS="1", LAKEWATCH_RETRAIN_RETRY_DELAY_SECONDS="2")
    report = last_report(settings)
    assert report["outcome"] == "failed" and report["failed_step"] == "freshness", report
    assert "the lake is stale" in report["summary"]
    assert client.get_model_version_by_alias(settings.model_name, "champion").version == before
    log = (settings.log_dir / "airflow-dags-test.log").read_text()
    assert log.count("retrain: the lake is stale") >= 2  # the first try and the retry


# ---- live data without labels (model/unsupervised.py) ----

@pytest.fixture(scope="module")
def unlabelled(trained, tmp_path_factory):
    """The same bars in a lake of their own without anomaly_labels, as live Finnhub data has
    none, and a registered model name of its own on the same MLflow server."""
    settings, _ = trained
    live = lake_copy(settings, tmp_path_factory.mktemp("live"), (tables.BARS_1M,), model_name="lakewatch-anomaly-live")
    tables.ensure(live.lake_dir, (tables.ANOMALY_LABELS,))
    return live


def test_without_labels_training_flags_the_target_share_of_each_class_and_its_card_says_so(unlabelled):
    live = unlabelled
    result = training.train(live)
    assert result["promoted"] and set(result["thresholds"]["robust_ensemble"]) >= {"stocks", "forex", "crypto"}
    held_out = result["test"]["robust_ensemble"]
    rates = {k.split(".")[1]: v for k, v in held_out.items() if k.startswith("alert_rate.")}
    # fit on each class's own first 70 %: the newest 30 % flags about as many (within 4x), not none or a flood
    assert all(live.model_target_alert_rate / 4 < r < 4 * live.model_target_alert_rate for r in rates.values()), rates
    client = mlflow.MlflowClient(live.mlflow_tracking_uri)
    version = client.get_model_version(live.model_name, result["version"])
    assert version.tags["mode"] == "unsupervised" and version.description.startswith("Mode: unsupervised")
    assert client.get_run(result["run_id"]).data.params["mode"] == "unsupervised"


def test_without_labels_the_gate_compares_alert_rates_not_f1(unlabelled):
    live = unlabelled
    before = mlflow.MlflowClient(live.mlflow_tracking_uri).get_model_version_by_alias(live.model_name, "champion")
    result = training.train(live)  # the same bars: no closer to the target than the champion
    run = mlflow.MlflowClient(live.mlflow_tracking_uri).get_run(result["run_id"])
    assert not result["promoted"] and "not closer to the target alert rate" in run.data.tags["gate"]
    assert "champion.test.rate_error" in run.data.metrics and "champion.test.f1" not in run.data.metrics
    assert mlflow.MlflowClient(live.mlflow_tracking_uri).get_model_version_by_alias(
        live.model_name, "champion").version == before.version
