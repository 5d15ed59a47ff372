"""Stream job benchmark: backlog throughput into Delta, and freshness at a steady live rate.

Measured in one run, on a private tansu broker and lake:
  raw consume     confluent-kafka reading the whole backlog from the same broker: the reference
  stream backlog  the stream job (--available-now) turning that backlog into Delta tables,
                  timed from its first batch's start to its last batch's end (JVM start-up excluded)
  freshness       the job running live with a 1 s trigger while a separate process produces
                  trades at a steady rate; a reader polls the trades table's Delta log every
                  10 ms and, for every row of each new version, takes (time the version was first
                  seen) - (time the row was produced): p50/p95/max
Usage: python benchmarks/bench_stream.py [--backlog N] [--rate R] [--seconds S]
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

from ingestion.producer import RecordProducer  # noqa: E402
from ingestion.topics import ensure_topics  # noqa: E402
from lakewatch import settings as settings_module  # noqa: E402
from tests import lake  # noqa: E402
from tests.processes import free_port, start_tansu, stop_process, wait_for  # noqa: E402

SYMBOLS = [("AAPL", "stocks"), ("MSFT", "stocks"), ("NVDA", "stocks"), ("AMZN", "stocks"), ("TSLA", "stocks"),
           ("OANDA:EUR_USD", "forex"), ("OANDA:GBP_USD", "forex"), ("OANDA:USD_JPY", "forex"),
           ("BINANCE:BTCUSDT", "crypto"), ("BINANCE:ETHUSDT", "crypto"), ("BINANCE:SOLUSDT", "crypto")]


def trade(i: int, ts_ms: int) -> dict:
    symbol, asset_class = SYMBOLS[i % len(SYMBOLS)]
    return {"symbol": symbol, "asset_class": asset_class, "price": 100.0 + (i % 997) / 100, "volume": 1 + i % 50,
            "trade_ts": ts_ms, "conditions": [], "source": "bench", "ingested_at": ts_ms}


def produce_backlog(bootstrap: str, n: int) -> None:
    producer = RecordProducer(bootstrap, client_id="bench-backlog")
    start_ms = int(time.time() * 1000) - 3_600_000
    for i in range(n):  # an hour of history, in time order
        producer.publish("market.trades", trade(i, start_ms + i * 3_600_000 // n))
        if i % 20_000 == 0:
            producer.poll(0)
    assert producer.close(120) == 0


def raw_consume_rate(bootstrap: str, n: int) -> float:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-raw", "enable.auto.commit": False,
                         "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 32 << 20})
    consumer.assign([TopicPartition("market.trades", p, 0) for p in range(3)])
    seen, started = 0, time.perf_counter()
    while seen < n:
        seen += sum(1 for m in consumer.consume(10_000, timeout=0.05) if m.error() is None)
    rate = n / (time.perf_counter() - started)
    consumer.close()
    return rate


def steady_producer(bootstrap: str, rate: float, seconds: float) -> None:
    """Runs in its own process: `rate` trades/s, sent every 5 ms, each stamped when produced."""
    producer = RecordProducer(bootstrap, client_id="bench-live")
    sent, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        now_ms = int(time.time() * 1000)
        for _ in range(int(elapsed * rate) - sent):
            producer.publish("market.trades", trade(sent, now_ms))
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.close(30)


def freshness(settings, rate: float, seconds: float, work: Path) -> list[float]:
    job = lake.start_job(log_path=work / "stream-live.log")
    trades_path = str(settings.lake_dir / "trades")
    try:
        # The first batch pays for starting Spark's Python workers (seconds, once): not steady state.
        warmup = RecordProducer(settings.bootstrap_servers, client_id="bench-warmup")
        warmup.publish("market.trades", {**trade(0, int(time.time() * 1000)), "source": "warmup"})
        assert warmup.close() == 0
        wait_for(lambda: lake.count(settings, "trades") >= 1, 180, "the live job's first batch", every=0.5)
        producer = multiprocessing.get_context("spawn").Process(
            target=steady_producer, args=(settings.bootstrap_servers, rate, seconds))
        producer.start()
        latencies, seen_files, version = [], set(), -1
        table = DeltaTable(trades_path)
        deadline = time.monotonic() + seconds + 15
        while time.monotonic() < deadline:
            table.update_incremental()
            if table.version() != version:
                version = table.version()
                readable_at_us = time.time() * 1e6
                # Only the files this version added (from the Delta log), so a poll costs the same at
                # the end of the run as at its start.
                files = set(table.get_add_actions(flatten=True).column("path").to_pylist()) - seen_files
                seen_files |= files
                for name in files:
                    rows = pq.read_table(Path(trades_path) / name, columns=["ingested_at", "source"])
                    stamps = pc.filter(rows["ingested_at"], pc.equal(rows["source"], "bench")).cast("int64")
                    latencies += [(readable_at_us - us) / 1e6 for us in stamps.to_pylist()]
            time.sleep(0.01)
        producer.join()
    finally:
        lake.kill_hard(job)
    return latencies


def rate_over(batches: list[dict]) -> float:
    """Trades per second from the first batch's start to the last batch's end."""
    first_start = datetime.fromisoformat(batches[0]["ts"]).timestamp() - batches[0]["seconds"]
    last_end = datetime.fromisoformat(batches[-1]["ts"]).timestamp()
    return sum(b["trades"] for b in batches) / (last_end - first_start)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lakewatch-bench-stream-"))
    os.environ.update({"LAKEWATCH_STATE_DIR": str(work / "var"), "LAKEWATCH_BROKER_PORT": str(free_port()),
                       "LAKEWATCH_STREAM_PORT": str(free_port())})
    os.environ.pop("LAKEWATCH_KAFKA_BOOTSTRAP", None)
    settings = settings_module.load()
    settings.state_dir.mkdir(parents=True)
    broker = start_tansu(settings.broker_port, work / "tansu.log")
    try:
        ensure_topics(settings)
        produce_backlog(settings.bootstrap_servers, args.backlog)
        raw = raw_consume_rate(settings.bootstrap_servers, args.backlog)
        result = lake.run_available_now(timeout=1800)
        batches = [e for e in lake.log_events(result.stderr) if e["msg"] == "batch written"]
        assert sum(b["trades"] for b in batches) == args.backlog
        stream_rate = rate_over(batches)
        sustained_rate = rate_over(batches[1:])  # without the first batch's one-time worker start-up

        # Freshness on a fresh lake and checkpoint: the live job starts with no backlog.
        live = dataclasses.replace(settings, state_dir=work / "live")
        os.environ["LAKEWATCH_STATE_DIR"] = str(live.state_dir)
        live.state_dir.mkdir()
        stop_process(broker)
        broker = start_tansu(settings.broker_port, work / "tansu-live.log")
        ensure_topics(settings)
        latencies = freshness(live, args.rate, args.seconds, work)
    finally:
        stop_process(broker)

    print(f"stream benchmark: backlog {args.backlog:,} trades, {len(batches)} batches "
          f"(max {settings.max_offsets_per_trigger:,} records each); live {args.rate:,.0f} trades/s for {args.seconds:.0f} s")
    print(f"{'raw consume':<24} {raw:>10,.0f} trades/s   1.00")
    print(f"{'stream backlog -> Delta':<24} {stream_rate:>10,.0f} trades/s   {stream_rate / raw:.2f} x raw consume "
          f"(all batches)")
    print(f"{'  sustained':<24} {sustained_rate:>10,.0f} trades/s   {sustained_rate / raw:.2f} x raw consume "
          f"(without the first batch's worker start-up)")
    print(f"{'freshness (produce -> readable)':<32} rows {len(latencies):,}  p50 {percentile(latencies, 50):.2f} s  "
          f"p95 {percentile(latencies, 95):.2f} s  max {max(latencies):.2f} s")


if __name__ == "__main__":
    main()
