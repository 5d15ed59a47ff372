"""The Kafka broker and its topics: the contract between ingestion and the stream job.

The embedded profile runs its own broker, Apache Kafka in KRaft mode (stack/services/broker.py),
at host:broker_port, its controller at controller_port and its Prometheus metrics at
broker_metrics_port; `kafka_bootstrap` points everything at another Kafka instead (compose's,
or any external one) and removes the embedded broker from the stack.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    trades: str = "market.trades"
    quotes: str = "market.quotes"
    news: str = "market.news"
    fundamentals: str = "market.fundamentals"
    labels: str = "market.labels"

    def partitions(self, trades_partitions: int) -> dict[str, int]:
        """Topic name -> partition count: trades are the only high-volume topic."""
        counts = {name: 1 for name in dataclasses.astuple(self)}
        counts[self.trades] = trades_partitions
        return counts


@dataclass(frozen=True)
class Broker:
    # `kafka_bootstrap` empty means the embedded broker at host:broker_port.
    broker_port: int = 9092
    controller_port: int = 9093  # KRaft's controller listener, loopback only
    broker_metrics_port: int = 9105  # the JMX exporter agent's /metrics
    broker_heap: str = "1g"  # -Xmx of the embedded broker
    kafka_bootstrap: str = ""
    trades_partitions: int = 3
    topic_replication: int = 1  # the cluster profile's three brokers: 3
    topic_min_insync: int = 1  # ...and a write needs 2 of them (lakewatch/settings/cluster.py)
    topics: Topics = Topics()  # not read from the environment

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.broker_port}"
