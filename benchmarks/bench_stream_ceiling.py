"""What Spark and delta-spark reach on this machine whatever the parser: the stream's ceiling.

bench_stream.py measures the shipped job against a raw confluent-kafka consume. This asks how
far any job built from the card's parts could go, on the same backlog in one run, by stripping
the job down to three JVM-only queries (no Python touches a batch, no rejects, no bars, no
small tables), each with its own checkpoint, after a raw consume as the reference:

  read            Spark's Kafka source, every record's value cast to text, into the noop sink
  read + parse    the same, plus one from_json projection of the trades' fields and types
  parse + Delta   the same, appended to one Delta table with the stream's session and statistics

Rates are sustained: the first batch of each query (task and JIT start-up) is left out.
Usage: python benchmarks/bench_stream_ceiling.py [--backlog N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pytest

from bench_stream import produce_backlog, raw_consume_rate
from ingestion.topics import ensure_topics
from lakewatch.settings import Settings
from spark.parse import topic_specs
from spark.session import spark_session
from spark.source import options
from testkit.processes import private_settings, start_kafka, stop_process

SPARK_TYPES = {"VARCHAR": "STRING", "DOUBLE": "DOUBLE", "BIGINT": "BIGINT", "VARCHAR[]": "ARRAY<STRING>"}


def trades_schema(settings: Settings) -> str:
    """The trades' JSON fields as a Spark DDL string, from the parser's own spec."""
    fields = topic_specs(settings)[0].fields
    return ", ".join(f"{name} {SPARK_TYPES[kind]}" for name, kind in fields.items())


def sustained_rate(spark, frame, sink: str, path: Path) -> float:
    """Trades/s of `frame` written to `sink`, from the second batch's start to the last's end."""
    spans: list[tuple[float, float, int]] = []

    def write(batch, batch_id: int) -> None:
        started = time.monotonic()
        writer = batch.write.format(sink).mode("append")
        if sink == "delta":  # the stream's exactly-once keys, as delta_sink writes them
            writer = writer.option("txnAppId", "ceiling").option("txnVersion", batch_id)
        writer.save(str(path / "table"))
        spans.append((started, time.monotonic(), batch_id))

    query = (frame.writeStream.foreachBatch(write).option("checkpointLocation", str(path / "checkpoint"))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    rows = {p["batchId"]: p["numInputRows"] for p in query.recentProgress}
    later = [span for span in spans if span[2] != spans[0][2]]
    return sum(rows[batch_id] for *_, batch_id in later) / (later[-1][1] - later[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2_000_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lakewatch-bench-ceiling-"))
    settings = private_settings(pytest.MonkeyPatch(), work / "var")
    broker = start_kafka(settings, heap=settings.broker_heap)
    try:
        ensure_topics(settings)
        produce_backlog(settings.bootstrap_servers, args.backlog)
        raw = raw_consume_rate(settings.bootstrap_servers, args.backlog)
        spark = spark_session(settings)
        source = options(settings, [settings.topics.trades])
        # One plan, started as a new query (its own checkpoint, from the earliest offset) each time.
        text = (spark.readStream.format("kafka").options(**source).load()
                .selectExpr("partition", "offset", "timestamp", "CAST(value AS STRING) AS value"))
        parsed = text.selectExpr("partition", "offset", "timestamp",
                                 f"from_json(value, '{trades_schema(settings)}') AS r").select(
            "r.*", "partition", "offset", "timestamp")
        rates = {"read": sustained_rate(spark, text, "noop", work / "read"),
                 "read + parse": sustained_rate(spark, parsed, "noop", work / "parse"),
                 "parse + Delta": sustained_rate(spark, parsed, "delta", work / "delta")}
        spark.stop()
    finally:
        stop_process(broker)

    print(f"stream ceiling: backlog {args.backlog:,} trades, batches of {settings.max_offsets_per_trigger:,}")
    print(f"{'raw consume':<16} {raw:>10,.0f} trades/s   1.00")
    for name, rate in rates.items():
        print(f"{name:<16} {rate:>10,.0f} trades/s   {rate / raw:.2f} x raw consume")


if __name__ == "__main__":
    main()
