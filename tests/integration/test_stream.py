"""The stream job as a real process: real broker, real Spark, real Delta tables."""
from __future__ import annotations

import collections
import json
import time

import pytest
from confluent_kafka import Producer

from ingestion.producer import RecordProducer
from ingestion.topics import ensure_topics
from testkit import lake
from testkit.processes import private_settings, start_kafka, stop_process, wait_for

pytestmark = pytest.mark.integration

NOW_MS = int(time.time() * 1000)
GOOD = {"symbol": "AAPL", "asset_class": "stocks", "price": 190.5, "volume": 10, "trade_ts": NOW_MS - 60_000,
        "conditions": ["1"], "source": "test", "ingested_at": NOW_MS}

# (topic, raw value, the start of the reason it must be rejected with)
MALFORMED = [
    ("market.trades", b"not json", "not a JSON object"),
    ("market.trades", b"\xff\xfe\x00 binary", "not a JSON object"),
    ("market.trades", b"[1, 2, 3]", "not a JSON object"),
    ("market.trades", None, "empty value"),
    ("market.trades", json.dumps({**GOOD, "symbol": None}).encode(), "missing symbol"),
    ("market.trades", json.dumps({**GOOD, "asset_class": "bonds"}).encode(), "unknown asset_class: bonds"),
    ("market.trades", json.dumps({**GOOD, "price": "abc"}).encode(), "price is not a number: abc"),
    ("market.trades", json.dumps({**GOOD, "price": -5}).encode(), "price must be positive and finite"),
    ("market.trades", json.dumps({**GOOD, "price": 0}).encode(), "price must be positive and finite"),
    ("market.trades", json.dumps({**GOOD, "volume": -1}).encode(), "volume must be >= 0"),
    ("market.trades", json.dumps({k: v for k, v in GOOD.items() if k != "volume"}).encode(), "missing volume"),
    ("market.trades", json.dumps({**GOOD, "trade_ts": "soon"}).encode(), "trade_ts is not an integer"),
    ("market.trades", json.dumps({**GOOD, "trade_ts": NOW_MS + 86_400_000}).encode(), "trade_ts is more than 300 s after"),
    ("market.trades", json.dumps({**GOOD, "trade_ts": 1000}).encode(), "trade_ts is more than 366 days before"),
    ("market.news", json.dumps({"id": 1, "headline": "", "published_at": NOW_MS}).encode(), "missing headline"),
    ("market.quotes", json.dumps({"symbol": "AAPL", "asset_class": "stocks", "current": 0, "quote_ts": NOW_MS}).encode(),
     "current must be positive"),
    # issue 17: once the first row of "Latest prices"; under librdkafka's 1,000,000-byte message limit
    ("market.trades", json.dumps({**GOOD, "symbol": "A" * 900_000}).encode(), "symbol longer than 64 characters (900000)"),
    ("market.trades", json.dumps({**GOOD, "symbol": "AAPL\t"}).encode(), "symbol has characters outside"),
]
RAW_KEPT = 65_536  # bytes of a reject's raw_value (spark/parse.py MAX_REJECT_VALUE_BYTES)


def produce_raw(bootstrap: str, rows) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for topic, value, _ in rows:
        producer.produce(topic, key=b"AAPL", value=value)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """One broker, a simulated backfill with malformed records mixed in, one job run (several batches)."""
    state = tmp_path_factory.mktemp("stream")
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, state / "var", sim_anomalies_per_hour=4, sim_news_per_hour=20,
                                    max_offsets_per_trigger=7000)
        proc = start_kafka(settings, state / "broker.log")
        try:
            ensure_topics(settings)
            sent = lake.backfill(settings, minutes=20, rate=20)
            produce_raw(settings.bootstrap_servers, MALFORMED)
            sent.update(topic for topic, _, _ in MALFORMED)
            result = lake.run_available_now()
            yield settings, sent, result
        finally:
            stop_process(proc)


def test_malformed_records_go_to_rejects_with_reasons_and_valid_ones_to_their_tables(ingested):
    settings, sent, _ = ingested
    rejects = lake.table(settings, "rejects").to_pylist()
    assert len(rejects) == len(MALFORMED)
    by_value = {}
    for row in rejects:
        by_value.setdefault((row["topic"], row["raw_value"]), []).append(row["reason"])
    for topic, value, reason in MALFORMED:
        text = None if value is None else value.decode("utf-8", "replace")[:RAW_KEPT]  # ASCII where it is cut
        reasons = by_value[(topic, text)]
        assert any(r.startswith(reason) for r in reasons), (value, reasons)

    malformed_per_topic = collections.Counter(topic for topic, _, _ in MALFORMED)
    for topic, table in [("market.trades", "trades"), ("market.quotes", "quotes"), ("market.news", "news"),
                         ("market.fundamentals", "fundamentals"), ("market.labels", "anomaly_labels")]:
        assert lake.count(settings, table) == sent[topic] - malformed_per_topic[topic], table


def test_an_oversized_symbol_goes_to_rejects_truncated_with_its_full_length(ingested):
    settings, _, _ = ingested
    (row,) = [r for r in lake.table(settings, "rejects").to_pylist() if r["reason"].startswith("symbol longer")]
    assert len(row["raw_value"]) == RAW_KEPT and row["raw_length"] == len(json.dumps({**GOOD, "symbol": "A" * 900_000}))
    symbols = lake.table(settings, "trades")["symbol"].to_pylist()
    assert max(map(len, symbols)) <= 64 and not any(s.startswith("AAPL\t") for s in symbols)


def test_every_trade_offset_lands_once_in_trades_or_rejects(ingested):
    settings, sent, _ = ingested
    trades = lake.table(settings, "trades")
    rejects = lake.table(settings, "rejects").to_pylist()
    seen = list(zip(trades["kafka_partition"].to_pylist(), trades["kafka_offset"].to_pylist()))
    seen += [(r["kafka_partition"], r["kafka_offset"]) for r in rejects if r["topic"] == "market.trades"]
    assert len(seen) == len(set(seen)) == sent["market.trades"]
    for partition in {p for p, _ in seen}:  # and no gap: offsets are 0..n-1 per partition
        offsets = sorted(o for p, o in seen if p == partition)
        assert offsets == list(range(len(offsets)))


def test_bars_equal_a_recomputation_from_trades_across_batches(ingested):
    settings, _, result = ingested
    batches = [e for e in lake.log_events(result.stderr) if e["msg"] == "batch written"]
    assert len(batches) >= 3  # the rate limit split the backlog, so bars were merged across batches
    trades = lake.table(settings, "trades")
    assert all(trades["in_bar"].to_pylist())  # a backlog read in order has no late trade
    assert lake.assert_bars_match_trades(settings) >= 11 * 20 * 0.8  # frozen-feed anomalies leave gaps


def test_trades_are_partitioned_by_trade_date(ingested):
    settings, _, _ = ingested
    folders = {p.name for p in (settings.lake_dir / "trades").iterdir() if p.is_dir() and p.name != "_delta_log"}
    assert folders and all(f.startswith("trade_date=") for f in folders)


def test_late_trade_inside_the_watermark_updates_its_bar_and_a_later_one_is_counted(broker, tmp_path):
    ensure_topics(broker)
    minute = (NOW_MS - 10 * 60_000) // 60_000 * 60_000
    producer = RecordProducer(broker.bootstrap_servers)

    def trade(offset_s: float, price: float):
        producer.publish("market.trades", {**GOOD, "symbol": "LATE", "trade_ts": minute + int(offset_s * 1000),
                                           "price": price, "volume": 1})
        assert producer.flush() == 0

    def bar():
        rows = [r for r in lake.table(broker, "bars_1m").to_pylist() if r["symbol"] == "LATE"]
        return rows[0] if rows else None

    job = lake.start_job(log_path=tmp_path / "stream.log")
    try:
        for offset_s, price in [(0, 100.0), (20, 101.0), (40, 102.0)]:
            trade(offset_s, price)
        wait_for(lambda: bar() and bar()["trade_count"] == 3, 120, "the first three trades in their bar", every=0.5)

        trade(35, 150.0)  # 5 s behind the newest trade: inside the 10 s watermark
        wait_for(lambda: bar()["trade_count"] == 4, 60, "the in-watermark trade to update its bar", every=0.5)
        assert bar()["high"] == 150.0 and bar()["close"] == 102.0  # close is still the latest trade

        trade(5, 10.0)  # 35 s behind: past the watermark

        def late_counted() -> int:  # the batch's log line comes once all its tables are written
            events = lake.log_events((tmp_path / "stream.log").read_text())
            return sum(e.get("late", 0) for e in events if e["msg"] == "batch written")

        wait_for(late_counted, 60, "the batch with the late trade", every=0.5)
    finally:
        lake.kill_hard(job)
    assert late_counted() == 1
    late = [r for r in lake.table(broker, "trades").to_pylist() if not r["in_bar"]]
    assert [(r["price"], r["symbol"]) for r in late] == [(10.0, "LATE")]
    assert bar()["trade_count"] == 4 and bar()["low"] == 100.0  # the bar did not change
    lake.assert_bars_match_trades(broker)


def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(broker, tmp_path):
    ensure_topics(broker)
    sent = lake.backfill(broker, minutes=120, rate=25)  # about 180k trades
    env = {"LAKEWATCH_MAX_OFFSETS_PER_TRIGGER": "15000"}
    for kill_after in (30_000, 90_000):  # twice, at different points of the backlog
        job = lake.start_job(env, log_path=tmp_path / "stream.log")
        try:
            wait_for(lambda: lake.count(broker, "trades") >= kill_after, 240, f"{kill_after} trades", every=0.5)
        finally:
            lake.kill_hard(job)
    lake.run_available_now(env)

    trades = lake.table(broker, "trades")
    keys = list(zip(trades["kafka_partition"].to_pylist(), trades["kafka_offset"].to_pylist()))
    assert len(keys) == len(set(keys)) == sent["market.trades"]
    assert lake.count(broker, "anomaly_labels") == sent["market.labels"]
    assert lake.count(broker, "quotes") == sent["market.quotes"]
    lake.assert_bars_match_trades(broker)
