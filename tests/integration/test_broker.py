"""The embedded broker is Apache Kafka (stack/services/broker.py): its records survive restarts,
standard Kafka clients and Kafka's own tools talk to it, and it serves Prometheus metrics."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from ingestion.topics import ensure_topics
from stack.services import broker
from testkit.processes import start_kafka, stop_process

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(lw_settings):
    """A broker whose process the test may stop and start again: yields a restart function."""
    procs = [start_kafka(lw_settings)]
    ensure_topics(lw_settings)

    def restart(how: str) -> None:
        if how == "kill -9":
            os.killpg(procs[-1].pid, signal.SIGKILL)
            procs[-1].wait()
        else:
            stop_process(procs[-1], timeout=60)
        procs.append(start_kafka(lw_settings))

    try:
        yield restart
    finally:
        for proc in procs:
            stop_process(proc)


def produce(bootstrap: str, topic: str, n: int, tag: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        producer.produce(topic, key=f"SYM{i % 7}".encode(), value=f"{tag}-{i}".encode())
    assert producer.flush(30) == 0


def offsets(bootstrap: str) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (low, high) watermark of every lakewatch topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakewatch-tests"})
    try:
        found = {}
        for topic, meta in consumer.list_topics(timeout=10).topics.items():
            if topic.startswith("market."):
                for partition in meta.partitions:
                    found[(topic, partition)] = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                                               timeout=10)
        return found
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, str]]:
    """Every (partition, offset, value) of the topic, from the start to its end."""
    ends = {p: high for (t, p), (_, high) in offsets(bootstrap).items() if t == topic}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakewatch-tests", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows = []
    try:
        while len(rows) < sum(ends.values()):
            batch = consumer.consume(10_000, timeout=10)
            assert batch, f"read {len(rows)} of {sum(ends.values())} records"
            rows += [(m.partition(), m.offset(), m.value().decode()) for m in batch if not m.error()]
    finally:
        consumer.close()
    return rows


@pytest.mark.parametrize("how", ["graceful stop", "kill -9"])
def test_every_record_and_offset_survives_a_broker_restart(kafka, lw_settings, how):
    bootstrap = lw_settings.bootstrap_servers
    produce(bootstrap, "market.trades", 3000, "before")
    produce(bootstrap, "market.news", 40, "before")
    before, records = offsets(bootstrap), read_all(bootstrap, "market.trades", 3)
    assert sum(high for (t, _), (_, high) in before.items() if t == "market.trades") == 3000

    kafka(how)

    assert offsets(bootstrap) == before
    assert read_all(bootstrap, "market.trades", 3) == records
    produce(bootstrap, "market.trades", 300, "after")  # new records take new offsets: none repeats
    after = read_all(bootstrap, "market.trades", 3)
    assert len(after) == len({(p, o) for p, o, _ in after}) == 3300
    assert [r for r in after if r[2].startswith("before")] == records


def test_the_storage_is_formatted_once_so_the_stack_restarts_on_the_same_cluster(lw_settings):
    broker.format_storage(lw_settings)
    meta = (broker.kafka_dir(lw_settings) / "data" / "meta.properties").read_text()
    broker.format_storage(lw_settings)  # what the runner's prepare does at every start
    assert (broker.kafka_dir(lw_settings) / "data" / "meta.properties").read_text() == meta


def test_kcat_lists_produces_and_consumes(broker_settings):
    bootstrap = broker_settings.bootstrap_servers
    listing = subprocess.run(["kcat", "-b", bootstrap, "-L"], capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0 and 'topic "market.trades" with 3 partitions' in listing.stdout
    lines = [f'{{"n": {i}}}' for i in range(20)]
    # Idempotent, as lakewatch's producer is: a retried batch keeps its place in the partition.
    produced = subprocess.run(["kcat", "-b", bootstrap, "-X", "enable.idempotence=true", "-P", "-t", "market.news"],
                              input="\n".join(lines) + "\n",
                              capture_output=True, text=True, timeout=30)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", "market.news", "-o", "beginning", "-e", "-q"],
                              capture_output=True, text=True, timeout=30)
    assert consumed.stdout.splitlines() == lines


def test_kafkas_console_producer_and_consumer_work_against_it(broker_settings):
    lines = [f"line {i}" for i in range(10)]
    produced = subprocess.run(broker.tool_command(broker_settings, "console-producer", ["--topic", "market.labels"]),
                              input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(broker.tool_command(broker_settings, "console-consumer", [
        "--topic", "market.labels", "--from-beginning", "--max-messages", "10", "--timeout-ms", "30000"]),
        capture_output=True, text=True, timeout=120)
    assert consumed.stdout.splitlines() == lines, consumed.stderr


def test_the_broker_serves_prometheus_metrics(broker_settings):
    produce(broker_settings.bootstrap_servers, "market.trades", 100, "m")
    text = requests.get(broker_settings.url(broker_settings.broker_metrics_port, "/metrics"), timeout=10).text
    assert 'kafka_server_brokertopicmetrics_messagesinpersec_total{topic="market.trades"' in text
    assert "kafka_log_logendoffset" in text and "jvm_memory_used_bytes" in text


@pytest.fixture
def broker_settings(broker):
    ensure_topics(broker)
    return broker
