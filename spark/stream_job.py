"""The stream job: Kafka topics -> Spark Structured Streaming -> Delta tables, exactly once.

    python -m spark.stream_job                 # run until SIGTERM (the stack starts it)
    python -m spark.stream_job --available-now # process what is on the broker, then exit

Read, transform, write: Spark's own Kafka source reads every topic (source.py) and hands
each micro-batch to the driver as one Arrow table; parse.py types and validates it (DuckDB),
and DeltaSink writes all tables with delta-spark, with idempotent commits keyed by the
query's id and the batch id. Checkpoints live in <state>/checkpoints/stream, the tables in
<state>/lake. /health and /metrics are served on settings.stream_port.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, TopicPartition

from lakewatch import logs, service_http
from lakewatch.logs import event
from lakewatch.maintenance import Schedule
from lakewatch.settings import Settings, load
from spark import stream_metrics as metrics
from spark.delta_sink import DeltaSink
from spark.parse import Parser, topic_specs
from spark.session import APP_NAME, spark_session
from spark.source import end_offsets, read_kafka

log = logging.getLogger("spark.stream_job")
QUERY_NAME = APP_NAME


def query_id(checkpoint) -> str:
    """A streaming query's id, which Spark writes in its checkpoint before the first batch and
    keeps for the checkpoint's life (unlike the run id, new at every start)."""
    return json.loads((checkpoint / "metadata").read_text())["id"]


class Job:
    """Owns the query, its sink and maintenance; foreachBatch calls `process`."""

    def __init__(self, settings: Settings, spark):
        self.settings = settings
        self.spark = spark
        self.specs = topic_specs(settings)
        self.parser = Parser(self.specs)
        self.checkpoint = settings.checkpoint_dir / "stream"
        self.sink = DeltaSink(spark, settings.lake_dir, self.specs, settings.bar_watermark_seconds,
                              settings.bars_merge_seconds)
        self.maintenance = Schedule(self.sink.paths, settings.maintenance_minutes, settings.vacuum_retention_hours)
        self.query = None
        self.last_batch_at: float | None = None

    def process(self, batch, batch_id: int) -> None:
        if self.sink.query is None:
            self.sink.start(query_id(self.checkpoint))
        started = time.monotonic()
        raw = batch.toArrow()
        read_s = time.monotonic() - started
        counts = {"input": len(raw), **self.sink.write(self.parser.parse(raw), batch_id)}
        metrics.INPUT_ROWS.inc(len(raw))
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        metrics.BATCH_ID.set(batch_id)
        metrics.LAST_BATCH.set(time.time())
        self.last_batch_at = time.monotonic()
        if counts["input"]:
            event(log, "batch written", batch_id=batch_id, seconds=round(time.monotonic() - started, 3),
                  spark_seconds=round(read_s, 3), **counts)
        if self.maintenance.due():
            self.sink.flush()  # delta-rs maintenance must not race a delta-spark MERGE on bars_1m
            self.maintenance.run_if_due()

    def start(self, available_now: bool = False):
        topics = list(self.settings.topics.partitions(self.settings.trades_partitions))
        writer = (read_kafka(self.spark, self.settings, topics).writeStream.queryName(QUERY_NAME)
                  .foreachBatch(self.process).option("checkpointLocation", str(self.checkpoint)))
        writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
            processingTime=f"{self.settings.trigger_seconds} seconds")
        self.query = writer.start()
        return self.query

    def health(self) -> tuple[bool, dict]:
        query = self.query
        active = bool(query and query.isActive)
        error = (query.exception() if query else None) or self.sink.bars_merge.error
        age = None if self.last_batch_at is None else round(time.monotonic() - self.last_batch_at, 1)
        # A trigger that cannot finish within a minute is a stuck job, not a slow one.
        stalled = age is not None and age > max(60.0, 30 * self.settings.trigger_seconds)
        progress = query.lastProgress if query else None
        details = {"query_active": active, "last_batch_id": self.sink.last_batch_id, "last_batch_age_s": age,
                   "bars_merged_batch_id": self.sink.bars_merge.merged,
                   "last_batch_durations_ms": progress.get("durationMs") if progress else None,
                   "watermarks_us": self.sink.watermarks, "error": str(error) if error else None}
        return active and not error and not stalled, details

    def update_progress_metrics(self, lag_consumer: Consumer) -> None:
        progress = self.query.lastProgress if self.query else None
        if not progress:
            return
        metrics.INPUT_RATE.set(progress.get("inputRowsPerSecond") or 0)
        metrics.PROCESSED_RATE.set(progress.get("processedRowsPerSecond") or 0)
        for source in progress.get("sources", []):
            for (topic, partition), offset in end_offsets(source).items():
                try:
                    _, high = lag_consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=2)
                except Exception:
                    continue
                metrics.LAG.labels(topic, str(partition)).set(max(0, high - offset))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--available-now", action="store_true", help="process the backlog, then exit")
    args = parser.parse_args(argv)
    settings = load()
    logs.setup("stream")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    started = time.monotonic()
    spark = spark_session(settings)
    job = Job(settings, spark)
    server = service_http.serve(settings.host, settings.stream_port, job.health)
    query = job.start(available_now=args.available_now)
    event(log, "stream started", seconds=round(time.monotonic() - started, 1), lake=str(settings.lake_dir),
          checkpoint=str(job.checkpoint), broker=settings.bootstrap_servers, port=settings.stream_port,
          symbols_with_watermark=len(job.sink.watermarks))

    lag_consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "lakewatch-stream-lag",
                             "enable.auto.commit": False})
    code = 0
    try:
        while not stop.is_set() and query.isActive:
            stop.wait(2.0)
            job.update_progress_metrics(lag_consumer)
        if query.exception():
            event(log, "stream query failed", logging.ERROR, error=str(query.exception()))
            code = 1
    finally:
        query.stop()
        try:
            job.sink.flush()  # the bars still waiting
        except Exception as error:  # noqa: BLE001 - their trades are in the lake: the next start merges them
            event(log, "bars not merged at stop", logging.ERROR, error=str(error))
            code = 1
        lag_consumer.close()
        server.shutdown()
        spark.stop()
        event(log, "stream stopped", last_batch_id=job.sink.last_batch_id)
    return code


if __name__ == "__main__":
    sys.exit(main())
