"""Ingestion benchmark: how fast records reach the embedded broker, against the broker's raw rate.

Measured in one run, on a private Kafka broker (the stack's own, stack/services/broker.py) on free ports:
  raw broker      confluent-kafka producing pre-encoded bytes with lakewatch's producer settings
                  (idempotent, acks=all, lz4): the ceiling any producer can reach here.
  producer        ingestion.producer.RecordProducer.publish() of trade records (JSON encoding,
                  keys, delivery accounting): lakewatch's own producer path.
  simulator       MarketSimulator.advance() alone: trades generated per second (no Kafka).
  sim -> broker   the backfill path: simulate, flatten Finnhub frames into records, produce.
Figures are printed as a table with the ratio to the raw broker rate; docs/benchmarks.md
records them, with the broker's resident memory after the runs.
Usage: python benchmarks/bench_ingestion.py [--records N]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from ingestion import sim_feed
from ingestion.producer import RecordProducer, producer_config
from ingestion.simulator import MarketSimulator
from ingestion.topics import ensure_topics
from testkit.processes import private_settings, rss_mb, start_kafka, stop_process

START_MS = 1_763_712_000_000  # a fixed Friday 08:00 UTC, so every run simulates the same market


def trade_records(n: int) -> list[dict]:
    symbols = [("AAPL", "stocks"), ("OANDA:EUR_USD", "forex"), ("BINANCE:BTCUSDT", "crypto")] * 4
    return [{"symbol": s, "asset_class": a, "price": 100.0 + i % 1000 / 100, "volume": 100, "trade_ts": START_MS + i,
             "conditions": ["1"], "source": "simulator", "ingested_at": START_MS + i}
            for i, (s, a) in ((i, symbols[i % len(symbols)]) for i in range(n))]


def bench_raw(bootstrap: str, records: list[dict], topic: str) -> float:
    encoded = [(r["symbol"].encode(), json.dumps(r, separators=(",", ":")).encode()) for r in records]
    producer = Producer(producer_config(bootstrap, "bench-raw"))
    started = time.perf_counter()
    for key, value in encoded:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0
    return len(encoded) / (time.perf_counter() - started)


def bench_producer(bootstrap: str, records: list[dict], topic: str) -> float:
    producer = RecordProducer(bootstrap, client_id="bench-producer")
    started = time.perf_counter()
    for i, record in enumerate(records):
        producer.publish(topic, record)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.close(120) == 0 and producer.failed == 0
    return len(records) / (time.perf_counter() - started)


def bench_simulator(settings, minutes: float, rate: float) -> float:
    sim = MarketSimulator.from_settings(settings, start_ms=START_MS, rate=rate)
    end_ms = START_MS + int(minutes * 60_000)
    trades = 0
    started = time.perf_counter()
    while sim.now_ms < end_ms:  # minute by minute, as the backfill asks
        trades += sim.advance(min(end_ms, sim.now_ms + 60_000)).trade_count
    return trades / (time.perf_counter() - started)


def bench_sim_to_broker(settings, minutes: float, rate: float) -> float:
    producer = RecordProducer(settings.bootstrap_servers, client_id="bench-sim")
    started = time.perf_counter()
    totals = sim_feed.backfill(settings, producer.publish, days=minutes / 1440, rate=rate,
                               end_ms=START_MS + int(minutes * 60_000), progress=False, poll=producer.poll)
    assert producer.close(120) == 0
    return totals["trades"] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median is reported")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lakewatch-bench-"))
    settings = private_settings(pytest.MonkeyPatch(), work)  # free ports, this process's venvs and jars
    broker = start_kafka(settings, heap=settings.broker_heap)
    try:
        ensure_topics(settings)
        records = trade_records(args.records)
        minutes = args.records / 2000 / 60  # the simulator at 2,000 trades/s makes about as many trades
        runs: dict[str, list[float]] = {"raw broker": [], "producer": [], "simulator": [], "sim -> broker": []}
        for _ in range(args.repeat):  # interleaved, so drift on a busy machine hits every figure alike
            runs["raw broker"].append(bench_raw(settings.bootstrap_servers, records, settings.topics.trades))
            runs["producer"].append(bench_producer(settings.bootstrap_servers, records, settings.topics.trades))
            runs["simulator"].append(bench_simulator(settings, minutes, 2000))
            runs["sim -> broker"].append(bench_sim_to_broker(settings, minutes, 2000))
        broker_rss = rss_mb(broker.pid)
    finally:
        stop_process(broker)

    median = {name: sorted(values)[len(values) // 2] for name, values in runs.items()}
    print(f"ingestion benchmark: {args.records:,} trade records per run, median of {args.repeat}, "
          f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{'measurement':<16} {'msgs/s':>10}  {'x raw broker':>12}")
    for name, value in median.items():
        print(f"{name:<16} {value:>10,.0f}  {value / median['raw broker']:>12.2f}")
    print(f"broker RSS after the runs: {broker_rss:,.0f} MiB (-Xmx{settings.broker_heap})")


if __name__ == "__main__":
    main()
