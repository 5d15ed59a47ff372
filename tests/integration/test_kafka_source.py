"""The Kafka -> Spark seam: every record once, rate limits, restarts, a broker that comes back empty.

Real tansu brokers and a real local[2] Spark; output goes through foreachBatch into a list
of Arrow tables, the way the stream job receives it.
"""
from __future__ import annotations

import collections
import json
import logging
import random
import time
from dataclasses import replace
from types import SimpleNamespace

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ingestion.producer import producer_config
from ingestion.topics import ensure_topics
from spark import kafka_source
from spark.kafka_source import KAFKA_SCHEMA, limit_offsets, offset_json, plan_ranges, plan_tasks, read_kafka
from testkit.processes import start_tansu, stop_process

pytestmark = pytest.mark.integration


@pytest.fixture
def start_broker(lw_settings):
    """Starts tansu (a fresh cluster id each time) on lw_settings' port with lakewatch's topics;
    every broker started is stopped by its PID at the end."""
    procs = []

    def start():
        procs.append(start_tansu(lw_settings.broker_port, lw_settings.log_dir / "broker.log"))
        ensure_topics(lw_settings)
        admin = AdminClient({"bootstrap.servers": lw_settings.bootstrap_servers})
        return procs[-1], admin.list_topics(timeout=10).cluster_id

    yield start
    for proc in procs:
        stop_process(proc)


def produce(settings, topic: str, first: int, count: int, raw: list[bytes] = ()) -> collections.Counter:
    """`count` keyed JSON records numbered from `first` (and `raw` values without a key), sent the
    way ingestion sends them; returns how often each (key, value) was sent."""
    # A plain Producer, dropped on return: an idle client left connected makes tansu take 5 s to stop.
    producer = Producer(producer_config(settings.bootstrap_servers, "kafka-source-tests"))
    sent: collections.Counter = collections.Counter()
    for i in range(first, first + count):
        record = {"symbol": f"S{i % 17}", "i": i, "topic": topic}
        producer.produce(topic, key=record["symbol"].encode(), value=orjson.dumps(record))
        sent[record["symbol"], orjson.dumps(record).decode()] += 1
    for value in raw:
        producer.produce(topic, value=value)
        sent[None, value.decode(errors="replace")] += 1
    assert producer.flush(30) == 0
    return sent


def run_available_now(df, checkpoint) -> list[pa.Table]:
    batches: list[pa.Table] = []
    query = (df.writeStream.foreachBatch(lambda batch, _: batches.append(batch.toArrow()))
             .option("checkpointLocation", str(checkpoint)).trigger(availableNow=True).start())
    assert query.awaitTermination(90), "availableNow query did not finish"
    assert query.exception() is None
    return batches


def rows_of(batches: list[pa.Table]) -> list[dict]:
    return [row for table in batches for row in table.to_pylist()]


def assert_once_each(rows: list[dict]) -> None:
    ids = [(r["topic"], r["partition"], r["offset"]) for r in rows]
    assert len(ids) == len(set(ids))


def test_every_record_is_read_exactly_once_across_partitions(spark, start_broker, lw_settings, tmp_path):
    start_broker()
    trades, news = lw_settings.topics.trades, lw_settings.topics.news
    # The value that is not UTF-8 must arrive (the job sends it to the rejects table), not vanish.
    sent = {trades: produce(lw_settings, trades, 0, 30_000), news: produce(lw_settings, news, 0, 300, [b"\xff\xfe not utf-8"])}

    df = read_kafka(spark, lw_settings, [trades, news], max_offsets_per_trigger=5000)
    assert df.isStreaming and df.schema.simpleString() == spark.createDataFrame([], KAFKA_SCHEMA).schema.simpleString()
    batches = run_available_now(df, tmp_path / "checkpoint")

    rows = rows_of(batches)
    assert_once_each(rows)
    for topic, expected in sent.items():
        got = collections.Counter((r["key"], r["value"]) for r in rows if r["topic"] == topic)
        assert got == expected, topic
    by_partition = collections.defaultdict(list)
    for r in rows:
        by_partition[r["topic"], r["partition"]].append(r["offset"])
    assert {tp: sorted(o) for tp, o in by_partition.items()} == {tp: list(range(len(o))) for tp, o in by_partition.items()}
    assert len([tp for tp in by_partition if tp[0] == trades]) == 3
    assert max(t.num_rows for t in batches) <= 5000
    assert len([t for t in batches if t.num_rows]) >= 7
    assert all(r["timestamp"].utcoffset().total_seconds() == 0 for r in rows[:10])
    assert abs(time.time() - rows[0]["timestamp"].timestamp()) < 600


def test_restart_from_checkpoint_reads_only_new_records(spark, start_broker, lw_settings, tmp_path):
    start_broker()
    trades = lw_settings.topics.trades
    first = produce(lw_settings, trades, 0, 2000)
    df = read_kafka(spark, lw_settings, [trades])
    assert collections.Counter((r["key"], r["value"]) for r in rows_of(run_available_now(df, tmp_path / "cp"))) == first

    second = produce(lw_settings, trades, 2000, 700)
    rows = rows_of(run_available_now(read_kafka(spark, lw_settings, [trades]), tmp_path / "cp"))
    assert collections.Counter((r["key"], r["value"]) for r in rows) == second
    assert_once_each(rows)


def test_records_produced_while_running_arrive(spark, start_broker, lw_settings, tmp_path):
    start_broker()
    trades, late = lw_settings.topics.trades, "lakewatch.late"  # `late` is created while the query runs
    batches: list[pa.Table] = []
    query = (read_kafka(spark, lw_settings, [trades, late], max_offsets_per_trigger=1000).writeStream
             .foreachBatch(lambda batch, _: batches.append(batch.toArrow()))
             .option("checkpointLocation", str(tmp_path / "cp")).trigger(processingTime="0.5 seconds").start())
    try:
        expected = collections.Counter()
        for round_ in range(3):
            expected += produce(lw_settings, trades, round_ * 1000, 1000)
            time.sleep(0.5)
        admin = AdminClient({"bootstrap.servers": lw_settings.bootstrap_servers})
        admin.create_topics([NewTopic(late, 1, 1)])[late].result(10)
        expected += produce(lw_settings, late, 0, 50)
        deadline = time.monotonic() + 60
        while sum(t.num_rows for t in batches) < sum(expected.values()) and time.monotonic() < deadline:
            assert query.exception() is None
            time.sleep(0.2)
    finally:
        query.stop()
    rows = rows_of(batches)
    assert collections.Counter((r["key"], r["value"]) for r in rows) == expected
    assert_once_each(rows)
    assert max(t.num_rows for t in batches) <= 1000


def test_broker_restarted_empty_is_read_from_its_beginning(spark, spark_log, start_broker, lw_settings, tmp_path):
    proc, old_cluster = start_broker()
    trades = lw_settings.topics.trades
    produce(lw_settings, trades, 0, 1500)
    assert len(rows_of(run_available_now(read_kafka(spark, lw_settings, [trades]), tmp_path / "cp"))) == 1500

    stop_process(proc)
    _, new_cluster = start_broker()  # same port, nothing kept, a new cluster id
    assert new_cluster != old_cluster
    fresh = produce(lw_settings, trades, 5000, 40)
    rows = rows_of(run_available_now(read_kafka(spark, lw_settings, [trades]), tmp_path / "cp"))
    assert collections.Counter((r["key"], r["value"]) for r in rows) == fresh
    assert min(r["offset"] for r in rows) == 0

    log = spark_log.read_text(errors="replace")
    warnings = [json.loads(line) for line in log.splitlines() if line.startswith("{") and "kafka cluster changed" in line]
    assert [(w["level"], w["old_cluster"], w["new_cluster"]) for w in warnings] == [("warning", old_cluster, new_cluster)]
    assert "replaced a previously registered data source" not in log  # registered once per session


def test_a_batch_replayed_after_the_broker_came_back_empty_reads_nothing(start_broker, lw_settings, caplog):
    """Spark replays the batch it had planned but not committed; its offsets belong to a broker that is gone."""
    proc, old_cluster = start_broker()
    trades = lw_settings.topics.trades
    produce(lw_settings, trades, 0, 300)
    planned_start = offset_json(old_cluster, {(trades, p): 0 for p in range(3)})
    planned_end = offset_json(old_cluster, {(trades, p): 100 for p in range(3)})
    reader = kafka_source.KafkaStreamReader({"kafka.bootstrap.servers": lw_settings.bootstrap_servers,
                                             "subscribe": trades})
    try:
        tasks = reader.partitions(planned_start, planned_end)  # same broker: the replay reads its ranges
        assert sorted(r.partition for task in tasks for r in task.ranges) == [0, 1, 2]
        stop_process(proc)
        start_broker()
        produce(lw_settings, trades, 1000, 300)  # the new broker's offsets overlap the old range
        with caplog.at_level(logging.WARNING, logger="spark.kafka_source"):
            assert reader.partitions(planned_start, planned_end) == []
        assert "batch planned on a broker that is gone" in caplog.text
    finally:
        reader.stop()


def test_offsets_are_probed_from_the_last_known_end(start_broker, lw_settings):
    start_broker()
    news = lw_settings.topics.news
    produce(lw_settings, news, 0, 40)
    reader = kafka_source.KafkaStreamReader({"kafka.bootstrap.servers": lw_settings.bootstrap_servers,
                                             "subscribe": news})
    try:
        assert sum(reader._snapshot().ends.values()) == 40
        produce(lw_settings, news, 40, 25)
        assert sum(reader._snapshot().ends.values()) == 65  # from the remembered ends, one fetch each
        assert sum(reader._snapshot().ends.values()) == 65  # nothing new: every partition answers at its end
    finally:
        reader.stop()


def test_a_range_the_broker_no_longer_has_fails_clearly_instead_of_hanging(start_broker, lw_settings, monkeypatch):
    start_broker()
    produce(lw_settings, lw_settings.topics.news, 0, 10)
    monkeypatch.setattr(kafka_source, "STALL_SECONDS", 1.0)
    with pytest.raises(TimeoutError, match=r"market.news/0: offsets \[10, 50\) not readable"):
        list(kafka_source.read_ranges(lw_settings.bootstrap_servers, (kafka_source.KafkaRange(lw_settings.topics.news, 0, 5, 50),)))


# ---- offset planning and the distributed profile, without a broker ------------------------

def test_max_rows_split_is_fair_and_never_exceeds_the_limit():
    rng = random.Random(3)
    for _ in range(2000):
        tps = [("t", p) for p in range(rng.randint(1, 6))]
        begin = {tp: rng.randint(0, 1000) for tp in tps}
        latest = {tp: begin[tp] + rng.choice([0, 1, rng.randint(0, 50), rng.randint(0, 100_000)]) for tp in tps}
        max_rows = rng.randint(1, 20_000)
        end = limit_offsets(begin, latest, max_rows)
        backlog = {tp: latest[tp] - begin[tp] for tp in tps}
        taken = {tp: end[tp] - begin[tp] for tp in tps}
        total = sum(backlog.values())
        assert all(0 <= taken[tp] <= backlog[tp] for tp in tps)
        assert sum(taken.values()) == min(total, max_rows)
        if total > max_rows and max_rows >= len([b for b in backlog.values() if b]):
            for tp in tps:
                assert taken[tp] >= min(backlog[tp], 1)
                # Proportional but for the one record each backlogged partition is sure of.
                assert abs(taken[tp] - backlog[tp] * max_rows / total) <= len(tps)


def test_max_rows_examples_and_offsets_that_went_backwards():
    begin = {("a", 0): 0, ("a", 1): 0, ("b", 0): 10}
    # One record each, the other 997 split 8999:999 by largest remainder.
    assert limit_offsets(begin, {("a", 0): 9000, ("a", 1): 1000, ("b", 0): 11}, 1000) == {
        ("a", 0): 898, ("a", 1): 101, ("b", 0): 11}
    assert limit_offsets(begin, {("a", 0): 9000, ("a", 1): 1000, ("b", 0): 11}, None)[("a", 0)] == 9000
    assert limit_offsets(begin, {("a", 0): 5, ("a", 1): 5, ("b", 0): 4}, 2) == {("a", 0): 1, ("a", 1): 1, ("b", 0): 4}


def test_planning_reads_a_new_cluster_from_its_low_offsets_and_skips_ranges_that_went_backwards(caplog):
    start = offset_json("old", {("t", 0): 900_000, ("t", 1): 50})
    end = offset_json("new", {("t", 0): 30, ("t", 1): 0}, lows={("t", 0): 0, ("t", 1): 0})
    assert plan_ranges(start, end) == [("t", 0, 0, 30)]

    with caplog.at_level(logging.WARNING, "spark.kafka_source"):
        assert plan_ranges(start, offset_json("old", {("t", 0): 10, ("t", 1): 60})) == [("t", 1, 50, 60)]
    assert [r.fields for r in caplog.records] == [{"topic": "t", "partition": 0, "start": 900_000, "end": 10}]

    big = plan_ranges(offset_json("c", {("t", 0): 0}), offset_json("c", {("t", 0): 1_000_000}))
    assert [(a, b) for _, _, a, b in big] == [(a, min(a + 125_000, 1_000_000)) for a in range(0, 1_000_000, 125_000)]


def test_a_small_batch_is_one_read_task_and_a_backlog_spreads_over_tasks_of_bounded_size():
    start = offset_json("c", {("t", 0): 0, ("t", 1): 100, ("u", 0): 0})
    live = plan_tasks(start, offset_json("c", {("t", 0): 3_000, ("t", 1): 3_400, ("u", 0): 5}))
    assert live == [[("t", 0, 0, 3_000), ("t", 1, 100, 3_400), ("u", 0, 0, 5)]]

    backlog = plan_tasks(start, offset_json("c", {("t", 0): 300_000, ("t", 1): 100_100, ("u", 0): 10}))
    size = max(b - a for task in backlog for _, _, a, b in task)
    assert len(backlog) >= 8 and all(sum(b - a for _, _, a, b in task) <= size for task in backlog)
    pieces = sorted(r for task in backlog for r in task)
    assert pieces == sorted(plan_ranges(start, offset_json("c", {("t", 0): 300_000, ("t", 1): 100_100, ("u", 0): 10})))


def test_distributed_profile_reads_spark_kafka_source_into_the_same_schema(spark, lw_settings):
    """Spark's kafka jar is not installable here: a stand-in reader records the options and
    returns a frame shaped like the kafka source's output, so the real projection runs on it."""
    kafka_shaped = spark.createDataFrame(
        [("t", 1, 7, b"AAPL", b'{"p": 1}', None, 0)],
        "topic STRING, partition INT, offset BIGINT, key BINARY, value BINARY, timestamp TIMESTAMP, timestampType INT")

    class Reader:
        def __init__(self):
            self.recorded: dict[str, str] = {}

        def format(self, name):
            self.recorded["format"] = name
            return self

        def options(self, **options):
            self.recorded.update(options)
            return self

        def load(self):
            return kafka_shaped

    reader = Reader()
    settings = replace(lw_settings, profile="distributed", kafka_bootstrap="kafka-1:9092,kafka-2:9092")
    df = read_kafka(SimpleNamespace(readStream=reader), settings, ["market.trades", "market.news"], 200_000)
    assert reader.recorded == {"format": "kafka", "kafka.bootstrap.servers": "kafka-1:9092,kafka-2:9092",
                              "subscribe": "market.trades,market.news", "startingOffsets": "earliest",
                              "failOnDataLoss": "false", "maxOffsetsPerTrigger": "200000"}
    assert df.schema == spark.createDataFrame([], KAFKA_SCHEMA).schema
    assert df.collect()[0].asDict() == {"topic": "t", "partition": 1, "offset": 7, "key": "AAPL", "value": '{"p": 1}',
                                        "timestamp": None}
