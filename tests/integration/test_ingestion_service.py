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

from lakewatch.service_http import healthy
from testkit.processes import make
from tests.conftest import FAKE_KEY
from tests.fakes.fake_finnhub import FakeFinnhub
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
        while not healthy(health_url):
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
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        stop_service(proc)
    assert proc.returncode == 1
    assert f"cannot reach the Kafka broker at {lw_settings.bootstrap_servers}" in stderr.strip().splitlines()[-1]


def finnhub_env(fake, key: str) -> dict:
    return {"FINNHUB_API_KEY": key, "LAKEWATCH_FINNHUB_WS_URL": fake.ws_url,
            "LAKEWATCH_FINNHUB_REST_URL": fake.rest_url}


def test_with_a_finnhub_key_live_trades_quotes_news_and_fundamentals_reach_the_broker(broker):
    with FakeFinnhub(key=FAKE_KEY, trickle_interval=0.1) as fake:
        proc = start_service(finnhub_env(fake, FAKE_KEY))
        try:
            trades = read_topic(broker.bootstrap_servers, broker.topics.trades, 3, expected=50, timeout=60)
            quotes = read_topic(broker.bootstrap_servers, broker.topics.quotes, expected=len(broker.symbols), timeout=60)
            news = read_topic(broker.bootstrap_servers, broker.topics.news, expected=1, timeout=60)
            fundamentals = read_topic(broker.bootstrap_servers, broker.topics.fundamentals, expected=1, timeout=60)
            health = json.load(urllib.request.urlopen(broker.url(broker.ingestion_port, "/health")))
        finally:
            code, stderr = stop_service(proc)
    assert code == 0, stderr[-2000:]
    assert health["source"] == "finnhub" and health["finnhub_ws_connected"] is True
    assert len(trades) >= 50 and {t["value"]["source"] for t in trades} == {"finnhub"}
    assert {t["value"]["asset_class"] for t in trades} == {"stocks", "forex", "crypto"}
    assert {q["key"] for q in quotes} == set(broker.symbols)
    assert news and fundamentals
    assert FAKE_KEY not in stderr  # the key never reaches a log line


def test_rejected_key_stops_make_up_with_one_readable_line(lw_settings):
    with FakeFinnhub(key=FAKE_KEY) as fake:
        os.environ.update(finnhub_env(fake, "wrong-key-42"))
        try:
            up = make("up", timeout=600)  # five services start before ingestion: minutes on a loaded machine
        finally:
            for name in finnhub_env(fake, ""):
                os.environ.pop(name)
            make("down")
    assert up.returncode != 0
    (line,) = [line for line in up.stderr.splitlines() if line.startswith("lakewatch:")]
    assert line.startswith("lakewatch: ingestion exited during start-up (exit code 2): ingestion: Finnhub rejected "
                           "the API key (HTTP 401")
    assert "set FINNHUB_API_KEY to a valid key" in line
    assert "wrong-key-42" not in up.stdout + up.stderr
    assert list(lw_settings.run_dir.glob("*.pid")) == []  # the broker was stopped again
