"""The cluster's nodes as services of the runner: each starts in its namespace, is checked from
the root namespace at its address, and is restarted by the supervisor like any service.

The namespaces are made by the first node's prepare step (idempotent). The topics are created
once the third broker is up, since a topic replicated 3 times needs 3 brokers.
"""
from __future__ import annotations

import socket
import time
from typing import Callable

from lakewatch.settings import Settings
from lakewatch.settings.cluster import CONTROLLER_PORT, KAFKA_PORT, NODES, Node
from stack.cluster import kafka, network, spark, trino
from stack.services import Service, kafka_healthy


def _prepare_kafka(settings: Settings, node: Node) -> Callable[[], dict[str, str]]:
    def prepare() -> dict[str, str]:
        network.up(settings)
        kafka.format_storage(settings, node)
        return {}
    return prepare


def _controller(settings: Settings, node: Node) -> Service:
    address = f"{settings.address(node)}:{CONTROLLER_PORT}"

    def listening() -> bool:  # its health: alone, a controller serves nothing until a majority runs
        try:
            socket.create_connection((settings.address(node), CONTROLLER_PORT), timeout=1).close()
            return True
        except OSError:
            return False

    return Service(name=node.name, command=kafka.command(settings, node), port=CONTROLLER_PORT,
                   url=f"kafka-controller://{address}", health=listening, quorum="kafka-controllers",
                   prepare=_prepare_kafka(settings, node), netns=network.namespace(settings, node))


def _kafka(settings: Settings, node: Node) -> Service:
    address = f"{settings.address(node)}:{KAFKA_PORT}"
    last = node == settings.cluster_nodes("kafka")[-1]
    return Service(name=node.name, command=kafka.command(settings, node), port=KAFKA_PORT, url=f"kafka://{address}",
                   health=lambda: kafka_healthy(address), prepare=_prepare_kafka(settings, node),
                   after_start=(lambda: ensure_replicated_topics(settings)) if last else None,
                   netns=network.namespace(settings, node))


def ensure_replicated_topics(settings: Settings, timeout: float = 60.0) -> None:
    from confluent_kafka.admin import AdminClient

    from ingestion.producer import KAFKA_LOG
    from ingestion.topics import ensure_topics

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": KAFKA_LOG})
    wanted = len(settings.cluster_nodes("kafka"))
    deadline = time.monotonic() + timeout
    while not kafka_healthy(settings.bootstrap_servers) or len(admin.list_topics(timeout=5).brokers) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {wanted} brokers registered after {timeout:.0f} s")
        time.sleep(0.5)
    ensure_topics(settings)


def _spark(settings: Settings, node: Node) -> Service:
    def prepare() -> dict[str, str]:
        network.up(settings)
        spark.write_properties(settings, node)
        return spark.environment(settings, node)

    return Service(name=node.name, command=spark.command(settings, node), port=0, url=spark.ui_url(settings, node, "/"),
                   health=lambda: spark.healthy(settings, node), prepare=prepare,
                   netns=network.namespace(settings, node))


def _trino(settings: Settings, node: Node) -> Service:
    from stack.services.trino import server_environment

    def prepare() -> dict[str, str]:
        network.up(settings)
        trino.write_config(settings, node)
        return server_environment(settings)

    return Service(name=node.name, command=trino.command(settings, node), port=0,
                   url=trino.url(settings, node, "/ui/"), health=lambda: trino.healthy(settings, node),
                   prepare=prepare, start_timeout=180, lake_read_only=True, netns=network.namespace(settings, node))


def services(settings: Settings) -> list[Service]:
    build = {"kafka-controller": _controller, "kafka": _kafka, "spark-master": _spark, "spark-worker": _spark,
             "trino-coordinator": _trino, "trino-worker": _trino}
    return [build[node.role](settings, node) for node in NODES
            if settings.sql_engine == "trino" or not node.role.startswith("trino")]
