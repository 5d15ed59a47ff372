"""Reads a topic back from the start, for tests that check what reached the broker: until the
expected count arrives, or nothing new comes for `idle` seconds.
"""
from __future__ import annotations

import json
import time

from confluent_kafka import Consumer, TopicPartition


def read_topic(bootstrap: str, topic: str, partitions: int = 1, expected: int | None = None,
               idle: float = 2.0, timeout: float = 60.0) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lakewatch-tests", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows: list[dict] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if expected is not None and len(rows) >= expected:
                break
            if expected is None and time.monotonic() - last_new > idle:
                break
            batch = consumer.consume(10000, timeout=0.2)
            for msg in batch:
                if msg.error():
                    raise RuntimeError(msg.error())
                rows.append({"partition": msg.partition(), "offset": msg.offset(),
                             "key": msg.key().decode() if msg.key() else None, "value": json.loads(msg.value())})
            if batch:
                last_new = time.monotonic()
    finally:
        consumer.close()
    return rows
