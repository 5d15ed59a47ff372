"""Creates lakewatch's topics idempotently, on the embedded broker and on Apache Kafka alike.

Run at every start: an existing topic is left alone (TOPIC_ALREADY_EXISTS is success), a
missing one is created. A topic with fewer partitions than configured is reported, not
repaired: adding partitions to a Kafka topic moves keys to other partitions, and with them
the order of a symbol's records.
"""
from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ingestion.producer import KAFKA_LOG
from lakewatch.logs import event
from lakewatch.settings import Settings

log = logging.getLogger("ingestion.topics")


def _counts(topics: dict, wanted: dict[str, int]) -> dict[str, int]:
    return {name: len(meta.partitions) for name, meta in topics.items() if name in wanted}


def _led(topics: dict, wanted: dict[str, int]) -> bool:
    """Every wanted topic is listed, and each of its partitions has a leader."""
    return all(name in topics and topics[name].error is None and topics[name].partitions
               and all(p.leader >= 0 and p.error is None for p in topics[name].partitions.values())
               for name in wanted)


def _visible(admin: AdminClient, wanted: dict[str, int], timeout: float) -> dict[str, int]:
    """The partition counts once the broker's metadata shows every wanted topic with a leader
    for each partition.

    CreateTopics returns when the controller has the topic; the broker answering Metadata
    learns of it, and its partitions of their leaders, a moment later (KRaft propagates metadata
    asynchronously). Until then a list can miss the topic, and a producer's first batch can fail
    and be retried behind later ones (CI saw kcat read record 0 last). A topic that exists is
    waited for too: right after a broker starts, its partitions have no leader until the
    controller has elected them.
    """
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if _led(topics, wanted) or time.monotonic() > deadline:
            return _counts(topics, wanted)
        time.sleep(0.1)


def ensure_topics(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Create missing topics; return {topic: partition count} as the broker reports it."""
    wanted = settings.topics.partitions(settings.trades_partitions)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": KAFKA_LOG})
    existing = admin.list_topics(timeout=timeout).topics
    config = {"min.insync.replicas": str(settings.topic_min_insync)}
    missing = [NewTopic(name, n, settings.topic_replication, config=config)
               for name, n in wanted.items() if name not in existing]
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result(timeout)
                event(log, "topic created", topic=name, partitions=wanted[name])
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent creator won
                    raise
    actual = _counts(existing, wanted) if not missing and _led(existing, wanted) else _visible(admin, wanted, timeout)
    for name, n in actual.items():
        if n < wanted[name]:
            event(log, "topic has fewer partitions than configured", logging.WARNING, topic=name, partitions=n, configured=wanted[name])
    return actual
