"""Stream job benchmark: backlog throughput into Delta, and freshness at a steady live rate.

Measured in one run, on a private Kafka broker (the stack's own) and lake:
  raw consume     confluent-kafka reading the whole backlog from the same broker: the reference
  stream backlog  the stream job (--available-now) turning that backlog into Delta tables,
                  timed from its first batch's start to its last batch's end (JVM start-up excluded)
  freshness       the job running live with a 1 s trigger while a separate process produces
                  trades at a steady rate; a reader polls the trades table's Delta log every
                  10 ms and, for every row of each new version, takes (time the version was first
                  seen) - (time the row was produced): p50/p95/max over the rows produced after a
                  warm-up at the same rate (the JVM compiles its hot paths during the first
                  batches), and also over all rows
  memory          resident memory of the broker and of the live stream job (its Python driver,
                  the Spark JVM and Spark's Python workers), sampled every second; the peak
Usage: python benchmarks/bench_stream.py [--backlog N] [--rate R] [--seconds S] [--warmup W]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable

from ingestion.producer import RecordProducer
from ingestion.topics import ensure_topics
from testkit import lake
from testkit.processes import private_settings, rss_mb, start_kafka, stop_process, tree_rss_mb, wait_for

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


def freshness(settings, rate: float, seconds: float, work: Path, peaks: dict) -> list[tuple[float, float]]:
    """(produced at, seconds until readable) of every row the steady producer sent; the job's
    peak RSS goes to peaks["stream job"]."""
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
        latencies, version = [], DeltaTable(trades_path).version()
        log_dir = Path(trades_path) / "_delta_log"
        deadline = time.monotonic() + seconds + 15
        sampled = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() - sampled >= 1:
                sampled = time.monotonic()
                peaks["stream job"] = max(peaks.get("stream job", 0), tree_rss_mb(job.pid))
            # A version is readable once its log file exists (Delta writes it atomically).
            # Polling for that file costs a stat; DeltaTable.update_incremental() took 5-6 ms of
            # CPU per poll, a third of a core taken from the job on a 2-core machine.
            while (added := written_files(log_dir, version + 1)) is not None:
                version += 1
                readable_at_us = time.time() * 1e6
                for name in added:
                    rows = pq.read_table(Path(trades_path) / name, columns=["ingested_at", "source"])
                    stamps = pc.filter(rows["ingested_at"], pc.equal(rows["source"], "bench")).cast(pa.timestamp("us")).cast("int64")
                    latencies += [(us / 1e6, (readable_at_us - us) / 1e6) for us in stamps.to_pylist()]
            time.sleep(0.01)
        producer.join()
    finally:
        lake.kill_hard(job)
    return latencies


def written_files(log_dir: Path, version: int) -> list[str] | None:
    """The data files a table version's WRITE commit added (none for maintenance commits, whose
    files hold rows already counted), or None while that version does not exist."""
    try:
        lines = (log_dir / f"{version:020d}.json").read_text().splitlines()
    except FileNotFoundError:
        return None
    actions = [json.loads(line) for line in lines if line.strip()]
    if any(a.get("commitInfo", {}).get("operation") not in (None, "WRITE") for a in actions):
        return []
    return [a["add"]["path"] for a in actions if "add" in a]


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
    parser.add_argument("--backlog", type=int, default=2_000_000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--seconds", type=float, default=60, help="measured live seconds, after the warm-up")
    parser.add_argument("--warmup", type=float, default=15, help="live seconds at the same rate before measuring")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lakewatch-bench-stream-"))
    settings = private_settings(pytest.MonkeyPatch(), work / "var")  # free ports, this process's venvs and jars
    broker = start_kafka(settings, heap=settings.broker_heap)
    peaks: dict[str, float] = {}
    try:
        ensure_topics(settings)
        produce_backlog(settings.bootstrap_servers, args.backlog)
        raw = raw_consume_rate(settings.bootstrap_servers, args.backlog)
        peaks["broker"] = rss_mb(broker.pid)
        result = lake.run_available_now(timeout=1800)
        batches = [e for e in lake.log_events(result.stderr) if e["msg"] == "batch written"]
        assert sum(b["trades"] for b in batches) == args.backlog
        stream_rate = rate_over(batches)
        sustained_rate = rate_over(batches[1:])  # without the first batch's one-time worker start-up

        # Freshness on a fresh lake and checkpoint: the live job starts with no backlog.
        live = dataclasses.replace(settings, state_dir=work / "live")
        os.environ["LAKEWATCH_STATE_DIR"] = str(live.state_dir)
        live.log_dir.mkdir(parents=True)
        stop_process(broker, timeout=60)
        broker = start_kafka(live, heap=settings.broker_heap)  # a new, empty broker in the live state folder
        ensure_topics(settings)
        produced = freshness(live, args.rate, args.warmup + args.seconds, work, peaks)
        peaks["broker"] = max(peaks["broker"], rss_mb(broker.pid))
    finally:
        stop_process(broker)

    print(f"stream benchmark: backlog {args.backlog:,} trades, {len(batches)} batches "
          f"(max {settings.max_offsets_per_trigger:,} records each); live {args.rate:,.0f} trades/s for {args.warmup:.0f} + {args.seconds:.0f} s")
    print(f"{'raw consume':<24} {raw:>10,.0f} trades/s   1.00")
    print(f"{'stream backlog -> Delta':<24} {stream_rate:>10,.0f} trades/s   {stream_rate / raw:.2f} x raw consume "
          f"(all batches)")
    print(f"{'  sustained':<24} {sustained_rate:>10,.0f} trades/s   {sustained_rate / raw:.2f} x raw consume "
          f"(without the first batch's worker start-up)")
    first = min(at for at, _ in produced)
    measured = [latency for at, latency in produced if at >= first + args.warmup]
    everything = [latency for _, latency in produced]
    for label, latencies in ((f"freshness after {args.warmup:.0f} s warm-up", measured),
                             ("freshness, all rows", everything)):
        print(f"{label:<32} rows {len(latencies):,}  p50 {percentile(latencies, 50):.2f} s  "
              f"p95 {percentile(latencies, 95):.2f} s  max {max(latencies):.2f} s")
    steps = [("whole batch", [b["seconds"] for b in batches[1:]]),
             ("Spark read + collect", [b["spark_seconds"] for b in batches[1:]])]
    steps += [("trades write", [b["write_seconds"].get("trades", 0) for b in batches[1:]]),
              ("bars_1m merge (in the background)", [b["bars_merge_seconds"] or 0 for b in batches[1:]])]
    print("backlog batch, median s: " + ", ".join(f"{name} {percentile(values, 50):.2f}" for name, values in steps))
    print("peak RSS: " + ", ".join(f"{name} {mb:,.0f} MiB" for name, mb in peaks.items()))


if __name__ == "__main__":
    main()
