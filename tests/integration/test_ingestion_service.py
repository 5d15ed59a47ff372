"""The ingestion service as a real process against a real broker: health, metrics, clean stop."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from lakewatch.services import http_healthy
from tests.kafka_read import read_topic

pytestmark = pytest.mark.integration


def start_service(env_extra: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ingestion.service"], env={**os.environ, **env_extra},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop_service(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return proc.returncode, err


def log_events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_simulator_service_is_healthy_counts_messages_and_flushes_everything_on_sigterm(broker):
    proc = start_service({"LAKEWATCH_SIM_RATE": "300", "LAKEWATCH_SIM_NEWS_PER_HOUR": "600"})
    try:
        health_url = broker.url(broker.ingestion_port, "/health")
        deadline = time.monotonic() + 30
        while not http_healthy(health_url):
            assert proc.poll() is None and time.monotonic() < deadline, "ingestion never became healthy"
            time.sleep(0.2)
        health = json.load(urllib.request.urlopen(health_url))
        assert health["status"] == "ok" and health["source"] == "simulator"
        time.sleep(3)
        scrape = urllib.request.urlopen(broker.url(broker.ingestion_port, "/metrics")).read().decode()
        assert 'lakewatch_ingest_messages_total{asset_class="crypto",topic="market.trades"}' in scrape
        assert "lakewatch_simulator_target_rate 300.0" in scrape
    finally:
        code, stderr = stop_service(proc)
    assert code == 0, stderr[-2000:]
    stopped = next(e for e in log_events(stderr) if e["msg"] == "ingestion stopped")
    assert stopped["failed"] == 0 and stopped["unflushed"] == 0 and stopped["delivered"] > 500

    # Every acknowledged record is on the broker: nothing was lost by stopping.
    on_broker = sum(len(read_topic(broker.bootstrap_servers, topic, partitions))
                    for topic, partitions in broker.topics.partitions(broker.trades_partitions).items())
    assert on_broker == stopped["delivered"]


def test_unreachable_broker_stops_the_service_with_one_sentence(lw_settings):
    proc = start_service({})
    code, stderr = stop_service(proc, timeout=60)
    assert code == 1
    assert f"cannot reach the Kafka broker at {lw_settings.bootstrap_servers}" in stderr.strip().splitlines()[-1]
