"""Drift end to end: a simulated market whose crypto regime shifts in the last whole hour goes
through the broker and the stream job into the lake; the champion is trained on it (its training
part ends hours before the shift), serving and the scorer score every bar, and Airflow's
lakewatch_drift, run by `airflow dags test`, measures the hour, writes model_drift, tells
Prometheus through the StatsD exporter, and triggers lakewatch_retrain, but not twice within
its cooldown."""
from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
import requests
from deltalake import DeltaTable

from lakewatch import tables
from model import drift
from model import train as training
from stack.services import statsd
from testkit import lake
from testkit.processes import (airflow_cli, airflow_dags_test, private_settings, start_mlflow,
                               start_module, stop_process, wait_for, wait_until_serving)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

HOURS = 36  # training (the first 70 %) then covers a whole day: every hour measured has its time of day in it
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """36 h of simulated market in the lake, crypto's trades falling to a fifth and its volatility
    tripling at a quarter past the last whole hour; a champion trained on it; every final bar
    scored; the StatsD exporter listening. Yields the settings and the hour that shifted."""
    state = tmp_path_factory.mktemp("drift")
    hour = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, state / "var", sim_anomalies_per_hour=1.5,
                                    sim_regime_shift=f"crypto@{(hour + pd.Timedelta(minutes=15)).isoformat()},"
                                                     "volatility=3,trades=0.2")
        lake.fill_with_history(settings, hours=HOURS, rate=20)
        processes = [start_mlflow(settings)]
        try:
            version = training.train(settings)["version"]
            processes.append(start_module(settings, "model.serve"))
            wait_until_serving(settings, version)
            scorer = start_module(settings, "model.score")
            expected = lake.final_bars(settings)
            try:
                wait_for(lambda: lake.count(settings, "anomalies") >= expected, 300, f"{expected} verdicts", every=1)
            finally:
                stop_process(scorer)
            statsd.build(settings)
            processes.append(subprocess.Popen(statsd.command(settings), stdout=subprocess.DEVNULL,
                                              stderr=subprocess.STDOUT, start_new_session=True))
            wait_for(lambda: statsd.service(settings).health(), 30, "the StatsD exporter", every=0.2)
            yield settings, hour
        finally:
            for proc in reversed(processes):
                stop_process(proc)


def measure_dag(settings, hour: pd.Timestamp) -> None:
    """lakewatch_drift for the hour from `hour`, as its trigger form's field asks for it."""
    done, seconds = airflow_dags_test(settings, "lakewatch_drift", conf={"at": (hour + HOUR).isoformat()})
    print(f"airflow dags test lakewatch_drift: exit {done.returncode} in {seconds:.1f} s")
    assert done.returncode == 0


def retrain_runs(settings) -> list[dict]:
    return json.loads(airflow_cli(settings, "dags", "list-runs", "lakewatch_retrain", "--output", "json").stdout or "[]")


def test_the_champion_keeps_the_training_distributions_of_the_bars_before_the_shift(shifted):
    settings, _ = shifted
    reference = drift.champion_drift(settings)
    assert reference is not None
    version, kept = reference
    assert set(kept["reference"]) >= {"stocks", "forex", "crypto"}
    # training's part ends where the held-out 30 % begins: hours before the shift
    assert 0 < kept["training_hours"] <= HOURS * (1 - training.TEST_FRACTION) + 1


def test_the_drift_dag_finds_the_shifted_class_tells_prometheus_and_triggers_the_retrain(shifted):
    settings, hour = shifted
    measure_dag(settings, hour)
    rows = DeltaTable(str(tables.MODEL_DRIFT.path(settings.lake_dir))).to_pandas()
    rows = rows[rows["window_start"] == hour]
    print(rows.assign(ratio=rows["psi"] / rows["threshold"]).sort_values("ratio").tail(5).to_string())
    assert set(rows.loc[rows["drifted"], "asset_class"]) == {"crypto"}
    assert set(rows["asset_class"]) == {"stocks", "forex", "crypto"} and (rows["bars"] >= drift.MIN_BARS).all()
    metrics = requests.get(settings.url(settings.statsd_metrics_port, "/metrics"), timeout=5).text
    assert 'lakewatch_model_drift_drifted{asset_class="crypto"} 1' in metrics
    assert 'lakewatch_model_drift_drifted{asset_class="stocks"} 0' in metrics
    assert len(retrain_runs(settings)) == 1


def test_an_earlier_calm_hour_measures_calm(shifted):
    settings, hour = shifted
    rows = drift.measure(settings, hour - HOUR)
    assert len(rows) and not rows["drifted"].any(), rows
    assert rows["window_start"].eq(hour - 2 * HOUR).all()


def test_drift_within_the_cooldown_of_a_retrain_does_not_retrain_again(shifted):
    settings, hour = shifted
    done, _ = airflow_dags_test(settings, "lakewatch_retrain")  # the retrain the drift asked for, run here
    assert done.returncode == 0
    runs = len(retrain_runs(settings))
    measure_dag(settings, hour)
    assert len(retrain_runs(settings)) == runs
    log = (settings.log_dir / "airflow-dags-test.log").read_text()
    assert "within the 6 h cooldown: not retraining again" in log
