"""What the producer sends is exactly what a consumer reads back from a real broker."""
from __future__ import annotations

import collections
import json
import time
from dataclasses import replace

import pytest

from ingestion import metrics, sim_feed
from ingestion.producer import RecordProducer
from ingestion.topics import ensure_topics
from testkit.processes import start_kafka, stop_process
from tests.kafka_read import read_topic

pytestmark = pytest.mark.integration


def test_topics_are_created_idempotently_with_three_trade_partitions(broker):
    first = ensure_topics(broker)
    second = ensure_topics(broker)
    assert first == second
    assert first == {"market.trades": 3, "market.quotes": 1, "market.news": 1, "market.fundamentals": 1,
                     "market.labels": 1}


def test_simulated_records_read_back_exactly_per_partition_and_key(broker):
    ensure_topics(broker)
    sent: dict[str, list[dict]] = collections.defaultdict(list)
    producer = RecordProducer(broker.bootstrap_servers)

    def publish(topic, record):
        sent[topic].append(record)
        producer.publish(topic, record)

    # 30 simulated minutes at 20 trades/s with anomalies and news switched up so every topic gets records.
    totals = sim_feed.backfill(replace(broker, sim_anomalies_per_hour=6, sim_news_per_hour=30),
                               publish, days=30 / 1440, rate=20, progress=False, poll=producer.poll)
    assert producer.close() == 0
    assert producer.failed == 0
    assert totals["trades"] > 20_000 and totals["labels"] > 0 and totals["news"] > 0

    for topic, records in sent.items():
        partitions = broker.trades_partitions if topic == broker.topics.trades else 1
        got = read_topic(broker.bootstrap_servers, topic, partitions, expected=len(records))
        assert len(got) == len(records), topic
        # Per key, one partition, and the records in the order they were produced.
        by_key = collections.defaultdict(list)
        partition_of_key = collections.defaultdict(set)
        for row in sorted(got, key=lambda r: (r["partition"], r["offset"])):
            by_key[row["key"]].append(row["value"])
            partition_of_key[row["key"]].add(row["partition"])
        assert all(len(p) == 1 for p in partition_of_key.values()), topic
        sent_by_key = collections.defaultdict(list)
        for record in records:
            sent_by_key[record.get("symbol")].append(json.loads(json.dumps(record)))
        assert by_key == sent_by_key, topic
    trade_partitions = {row["partition"] for row in read_topic(broker.bootstrap_servers, broker.topics.trades, 3,
                                                               expected=len(sent[broker.topics.trades]))}
    assert trade_partitions == {0, 1, 2}  # 11 symbols spread over all partitions


def test_delivery_errors_are_counted_and_retried_until_the_broker_is_back(lw_settings):
    errors_before = metrics.DELIVERY_ERRORS.labels("market.trades")._value.get()
    producer = RecordProducer(lw_settings.bootstrap_servers, **{"message.timeout.ms": 1500})
    records = [{"symbol": "AAPL", "asset_class": "stocks", "price": 100 + i, "volume": 1, "trade_ts": i}
               for i in range(50)]
    for record in records:
        producer.publish("market.trades", record)
    # No broker yet: every record times out, is counted, and waits to be produced again.
    deadline = time.monotonic() + 30
    while metrics.DELIVERY_ERRORS.labels("market.trades")._value.get() - errors_before < len(records):
        producer.poll(0.2)
        assert time.monotonic() < deadline, "records without a broker never reported a delivery error"
    proc = start_kafka(lw_settings)
    try:
        ensure_topics(lw_settings)
        assert producer.close(timeout=60) == 0
        assert producer.failed == 0 and producer.delivered == len(records)
        got = read_topic(lw_settings.bootstrap_servers, "market.trades", 3, expected=len(records))
        assert sorted(r["value"]["price"] for r in got) == [r["price"] for r in records]
    finally:
        stop_process(proc)
