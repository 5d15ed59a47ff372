"""Reads the topics with Spark's own Kafka source (spark-sql-kafka-0-10, from spark/pom.xml).

One code path for every profile: the embedded broker and compose's are both Apache Kafka.
Spark keeps the offsets in the query's checkpoint and reads each micro-batch's range again
after a crash, which, with the sink's idempotent commits, makes the job exactly-once.

Keys and values arrive as text: a value that is not valid UTF-8 still arrives, its bad bytes
replaced by U+FFFD, so the parser sends it to `rejects` with a reason instead of failing the
batch. A broker that lost records the checkpoint expected (a topic deleted and created again)
does not stop the stream: Spark logs it and goes on from what is there (failOnDataLoss=false).
"""
from __future__ import annotations

import json

from lakewatch.settings import Settings

# What parse.Parser reads: Spark's Kafka columns, typed as text and plain integers.
COLUMNS = ["topic", "CAST(partition AS INT) AS partition", "offset",
           "make_valid_utf8(CAST(key AS STRING)) AS key", "make_valid_utf8(CAST(value AS STRING)) AS value",
           "timestamp"]


def options(settings: Settings, topics: list[str]) -> dict[str, str]:
    """The source's options: every topic from its earliest offset, at most max_offsets_per_trigger a batch."""
    timeout_ms = str(int(settings.kafka_api_timeout_seconds * 1000))
    return {"kafka.bootstrap.servers": settings.bootstrap_servers, "subscribe": ",".join(topics),
            "startingOffsets": "earliest", "failOnDataLoss": "false",
            "maxOffsetsPerTrigger": str(settings.max_offsets_per_trigger),
            # When a partition's leader dies, the driver's offset lookup waits for that broker
            # until this timeout (60 s by default: the stream stood still for 70 s after a kill
            # -9 of a leader, tests/integration/test_cluster.py) before asking again with the
            # new leader from fresh metadata. Kafka wants a request's timeout no longer.
            "kafka.default.api.timeout.ms": timeout_ms, "kafka.request.timeout.ms": timeout_ms}


def read_kafka(spark, settings: Settings, topics: list[str]):
    """A streaming DataFrame of `topics` with COLUMNS."""
    return spark.readStream.format("kafka").options(**options(settings, topics)).load().selectExpr(*COLUMNS)


def end_offsets(progress_source: dict) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the next offset, from a source's entry in a query's lastProgress."""
    end = progress_source.get("endOffset") or {}
    if isinstance(end, str):
        end = json.loads(end)
    return {(topic, int(partition)): int(offset) for topic, partitions in end.items()
            for partition, offset in partitions.items()}
