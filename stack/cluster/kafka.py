"""Kafka in KRaft mode as production runs it: three controllers forming one static quorum, and
three brokers apart from them, each node in its own namespace; topics replicated 3 times, a
write acknowledged once 2 replicas have it.

Controllers apart from brokers, not one process doing both, because a broker's graceful stop
needs the quorum to approve it: with both roles in one process, stopping the whole cluster left
the last broker waiting for a majority that had stopped with the others (Kafka waits 5 minutes,
and the runner killed it). Apart, `down` stops every broker while all controllers still run.

The same jars, logging and metrics agent as the embedded broker (stack/services/broker.py);
only the role, node id, addresses, quorum and replication differ. The data folders are
formatted once with one cluster id, kept in <state>/cluster/kafka-cluster-id.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from lakewatch.settings import Settings
from lakewatch.settings.cluster import CONTROLLER_PORT, KAFKA_PORT, MIN_INSYNC_REPLICAS, REPLICATION_FACTOR, Node
from stack.services import broker


def node_dir(settings: Settings, node: Node) -> Path:
    return settings.state_dir / "cluster" / node.name


def properties(settings: Settings, node: Node) -> dict[str, str]:
    """A broker's or a controller's server.properties."""
    replicas, insync, address = str(REPLICATION_FACTOR), str(MIN_INSYNC_REPLICAS), settings.address(node)
    single = broker.properties(settings)
    single.pop("controller.quorum.bootstrap.servers")  # a dynamic quorum's; this one is static
    if node.role == "kafka-controller":  # it creates the topics, so it holds their default replication
        role = {"process.roles": "controller", "listeners": f"CONTROLLER://{address}:{CONTROLLER_PORT}",
                "default.replication.factor": replicas}
        single.pop("advertised.listeners")
    else:
        role = {"process.roles": "broker", "listeners": f"PLAINTEXT://{address}:{KAFKA_PORT}",
                "advertised.listeners": f"PLAINTEXT://{address}:{KAFKA_PORT}"}
    return single | role | {
        "node.id": str(node.kafka_id),
        "controller.quorum.voters": settings.controller_voters,
        "log.dirs": str(node_dir(settings, node) / "data"),
        "min.insync.replicas": insync,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas, "transaction.state.log.min.isr": insync,
        "share.coordinator.state.topic.replication.factor": replicas, "share.coordinator.state.topic.min.isr": insync,
        # A broker back from a kill or a partition catches up before it leads again.
        "unclean.leader.election.enable": "false",
    }


def _cluster_id(settings: Settings) -> str:
    path = settings.state_dir / "cluster" / "kafka-cluster-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(broker.cluster_id())
    return path.read_text().strip()


def format_storage(settings: Settings, node: Node) -> None:
    """Write the node's server.properties and format its data folder once."""
    home = node_dir(settings, node)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "server.properties"
    if "process.roles=broker,controller" in (path.read_text() if path.exists() else ""):
        # Its metadata log is an old quorum's, which the controllers now apart would not
        # accept: the broker would never become healthy, with no word why.
        raise RuntimeError(f"{settings.state_dir / 'cluster'} holds a cluster whose brokers were its controllers too "
                           "(lakewatch before 2026-12-07); stop it with `make cluster-down` and remove that folder "
                           "to start the new one")
    path.write_text("".join(f"{key}={value}\n" for key, value in properties(settings, node).items()))
    if not (home / "data" / "meta.properties").exists():
        done = subprocess.run(["java", "-cp", broker.classpath(settings), "kafka.tools.StorageTool", "format",
                               f"--cluster-id={_cluster_id(settings)}", "--config", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"formatting {node.name}'s storage failed: {(done.stderr or done.stdout).strip()[-500:]}")


def command(settings: Settings, node: Node) -> list[str]:
    heap = settings.cluster_controller_heap if node.role == "kafka-controller" else settings.cluster_kafka_heap
    return broker.command(settings, heap,
                          properties_path=node_dir(settings, node) / "server.properties",
                          metrics_host=settings.address(node))
