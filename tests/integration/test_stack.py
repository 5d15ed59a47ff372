"""`make up / status / down` on the real embedded stack, in a private state folder and ports."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
import requests
from deltalake import DeltaTable

from stack import runner as stack
from model.evaluate import live_false_alarms
from monitoring import prometheus
from testkit.processes import make, wait_for

pytestmark = pytest.mark.integration


def recorded_pids(settings) -> dict[str, int]:
    return {p.stem: json.loads(p.read_text())["pid"] for p in settings.run_dir.glob("*.pid")}


def test_up_status_down_leaves_no_process_behind(lw_settings):
    try:
        up = make("up", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"kafka://{lw_settings.bootstrap_servers}" in up.stdout
        assert lw_settings.url(lw_settings.ingestion_port, "/metrics") in up.stdout
        pids = recorded_pids(lw_settings)
        assert lw_settings.mlflow_tracking_uri in up.stdout
        assert lw_settings.url(lw_settings.superset_port, "/") in up.stdout
        assert lw_settings.url(lw_settings.chat_port, "/") in up.stdout
        assert set(pids) == {"broker", "mlflow", "serving", "stream", "scorer", "ingestion", "superset", "actions",
                             "rasa", "chat", "prometheus"}

        status = make("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert [line.split()[:2] + [line.split()[3]] for line in status.stdout.splitlines()[1:]] == [
            ["broker", "running", "ok"], ["mlflow", "running", "ok"], ["serving", "running", "ok"],
            ["stream", "running", "ok"], ["scorer", "running", "ok"], ["ingestion", "running", "ok"],
            ["superset", "running", "ok"], ["actions", "running", "ok"], ["rasa", "running", "ok"],
            ["chat", "running", "ok"], ["prometheus", "running", "ok"]]

        # Prometheus scrapes every service, and its console page shows them all.
        targets_url = lw_settings.url(lw_settings.prometheus_port, "/api/v1/targets")

        def health_of_targets() -> dict[str, str]:
            active = requests.get(targets_url, timeout=10).json()["data"]["activeTargets"]
            return {t["labels"]["job"]: t["health"] for t in active}

        wait_for(lambda: set(health_of_targets().values()) == {"up"}, 90, "every scrape target up", every=1)
        assert set(health_of_targets()) == set(prometheus.JOBS)
        console = requests.get(prometheus.console_url(lw_settings), timeout=10)
        assert console.status_code == 200 and all(f"<td>{job}</td>" in console.text for job in prometheus.JOBS)

        again = make("up")  # refuses to start a second copy
        assert again.returncode == 0 and again.stdout.count("already running") == 11
        assert recorded_pids(lw_settings) == pids

        logs = subprocess.run([sys.executable, "-m", "stack.cli", "logs", "--no-follow", "-n", "5"],
                              capture_output=True, text=True, timeout=30)
        assert "ingestion started" in logs.stdout
    finally:
        down = make("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert [pid for pid in pids.values() if stack.session_members(pid)] == []  # nothing of any service's session
    assert list(lw_settings.run_dir.glob("*.pid")) == []
    after = make("status")
    assert after.returncode != 0 and after.stdout.count("stopped") == 11  # make exits 2 when status says 1


def test_taken_port_is_reported_in_one_sentence_and_nothing_is_left_running(lw_settings):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", lw_settings.ingestion_port))
        squatter.listen()
        up = make("up", timeout=600)
    try:
        assert up.returncode != 0
        message = [line for line in up.stderr.splitlines() if line.startswith("lakewatch:")]
        assert len(message) == 1 and f"port {lw_settings.ingestion_port}" in message[0]
        assert "already taken" in message[0]
        assert list(lw_settings.run_dir.glob("*.pid")) == []  # the services started first were stopped again
    finally:
        make("down")


def verdicts_since(settings, since: pd.Timestamp) -> pd.DataFrame:
    path = settings.lake_dir / "anomalies"
    if not DeltaTable.is_deltatable(str(path)):
        return pd.DataFrame(columns=["symbol", "window_start", "is_anomaly", "excluded_reason", "model_version"])
    verdicts = DeltaTable(str(path)).to_pandas(columns=["symbol", "window_start", "is_anomaly", "excluded_reason",
                                                        "model_version"])
    return verdicts[verdicts["window_start"] >= since]


@pytest.mark.timeout(1800)  # a first make up, minutes of live bars, a restart and minutes more
def test_a_first_make_up_trains_a_model_whose_live_verdicts_stay_true_across_a_restart(lw_settings, monkeypatch):
    """The first model meets live bars of the size it learnt on, the switch from history to live
    and a restart of the stack are outages every symbol shares, and neither floods `anomalies`."""
    monkeypatch.setenv("LAKEWATCH_BOOTSTRAP_HOURS", "8")
    monkeypatch.setenv("LAKEWATCH_SERVING_RELOAD_SECONDS", "1")
    symbols = lw_settings.symbols
    try:
        up = make("up", timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "no model yet: backfilling 8 h of simulated history" in up.stdout
        live_from = pd.Timestamp.now(tz="UTC").ceil("min")

        versions = wait_for(lambda: set(verdicts_since(lw_settings, pd.Timestamp(0, tz="UTC"))["model_version"]),
                            300, "the first model's verdicts in anomalies", every=1)
        client = mlflow.MlflowClient(lw_settings.mlflow_tracking_uri)
        assert versions == {client.get_model_version_by_alias(lw_settings.model_name, "champion").version}
        # Each symbol's last bar of history and first live bar sit either side of the switch.
        def switch_excluded() -> bool:
            switch = verdicts_since(lw_settings, live_from - pd.Timedelta(minutes=15))
            return set(switch.loc[switch["excluded_reason"] == "pipeline_gap", "symbol"]) == set(symbols)

        wait_for(switch_excluded, 120, "every symbol's bars either side of the switch to live excluded", every=2)

        wait_for(lambda: len(verdicts_since(lw_settings, live_from + pd.Timedelta(minutes=3))) >= len(symbols),
                 600, "three minutes of live verdicts", every=2)  # a bar is scored a minute after it ends
        down_at = pd.Timestamp.now(tz="UTC")
        assert make("down").returncode == 0
        again = make("up", timeout=600)  # a model exists now: no second backfill
        assert again.returncode == 0 and "backfilling" not in again.stdout
        restarted_at = pd.Timestamp.now(tz="UTC")
        wait_for(lambda: len(verdicts_since(lw_settings, restarted_at + pd.Timedelta(minutes=2))) >= len(symbols),
                 600, "two minutes of verdicts after the restart", every=2)
    finally:
        down = make("down")
    assert down.returncode == 0, down.stdout + down.stderr

    labels = DeltaTable(str(lw_settings.lake_dir / "anomaly_labels")).to_pandas()
    live = verdicts_since(lw_settings, live_from)
    rates = live_false_alarms(live, labels)
    assert rates["bars"] >= 5 * len(symbols), rates
    # A wall of false anomalies flagged every bar; a model on the right regime flags few outside the labels.
    assert rates["false_alarms"] <= max(3, 0.05 * rates["bars"]), rates
    restart = live[(live["window_start"] >= down_at.floor("min") - pd.Timedelta(minutes=1))
                   & (live["window_start"] <= restarted_at + pd.Timedelta(minutes=1))]
    # Both bars either side of the outage, or the one holding it when the restart took under a minute.
    gap_bars = restart[restart["excluded_reason"] == "pipeline_gap"]
    assert set(gap_bars["symbol"]) == set(symbols), restart
    # Before, every symbol was flagged at once here; now only the model's ordinary error rate shows.
    assert live_false_alarms(restart, labels)["false_alarms"] <= 2, restart
