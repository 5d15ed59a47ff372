"""The one-host cluster (`make cluster`, LAKEWATCH_PROFILE=cluster): its nodes, their names,
roles and addresses, and what the rest of the stack is told to use instead of its own engines.

One source for both deployments: stack/cluster/ starts these nodes, each in a network
namespace of its own at its address, and docker-compose.yml's services of the same names are
checked against them (tests/unit/test_cluster.py), so the two cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

KAFKA_PORT, CONTROLLER_PORT = 9092, 9093
CONTROLLER_ID_BASE = 100  # a KRaft controller's node.id is this plus its number, apart from the brokers' 1-3
SPARK_MASTER_PORT, SPARK_UI_PORT, SPARK_WORKER_UI_PORT = 7077, 8080, 8081
REPLICATION_FACTOR, MIN_INSYNC_REPLICAS = 3, 2  # a write is acknowledged by 2 of 3 replicas


class Node(NamedTuple):
    name: str  # also its compose service (or, for numbered ones, the scaled service's replica)
    role: str  # kafka-controller | kafka | spark-master | spark-worker | trino-coordinator | trino-worker
    host: int  # the last byte of its address in cluster_subnet

    @property
    def number(self) -> int:
        """The name's last digit (kafka-2 is 2): a broker's node.id, which partitions name as leader."""
        return int(self.name.rsplit("-", 1)[1]) if self.name[-1].isdigit() else 0

    @property
    def kafka_id(self) -> int:
        """Kafka's node.id: a broker's number; a controller's, CONTROLLER_ID_BASE added."""
        return self.number + (CONTROLLER_ID_BASE if self.role == "kafka-controller" else 0)


# The controllers come first: the brokers register with their quorum, and `down`, which stops
# the last started first, stops every broker while the quorum that approves its stop still runs.
NODES = (
    Node("kafka-controller-1", "kafka-controller", 14), Node("kafka-controller-2", "kafka-controller", 15),
    Node("kafka-controller-3", "kafka-controller", 16),
    Node("kafka-1", "kafka", 11), Node("kafka-2", "kafka", 12), Node("kafka-3", "kafka", 13),
    Node("spark-master", "spark-master", 21), Node("spark-worker-1", "spark-worker", 22),
    Node("spark-worker-2", "spark-worker", 23),
    Node("trino", "trino-coordinator", 31), Node("trino-worker-1", "trino-worker", 32),
    Node("trino-worker-2", "trino-worker", 33),
)


@dataclass(frozen=True)
class Cluster:
    # A private /24 that only this machine's namespaces use; the root namespace holds .1, where
    # the stack's other services listen, so that the nodes reach them (a Spark executor its driver).
    cluster_subnet: str = "10.77.0"
    cluster_netns_prefix: str = "lw"  # namespaces <prefix>-<node>, bridge <prefix>br
    cluster_kafka_heap: str = "512m"
    cluster_controller_heap: str = "256m"  # a controller holds only the cluster's metadata
    cluster_trino_heap: str = "1G"
    spark_worker_memory: str = "1g"  # what each worker offers its executor

    @property
    def cluster_gateway(self) -> str:
        return f"{self.cluster_subnet}.1"

    def address(self, node: Node) -> str:
        return f"{self.cluster_subnet}.{node.host}"

    def cluster_nodes(self, role: str) -> list[Node]:
        return [node for node in NODES if node.role == role]

    @property
    def cluster_bootstrap(self) -> str:
        return ",".join(f"{self.address(node)}:{KAFKA_PORT}" for node in self.cluster_nodes("kafka"))

    @property
    def controller_voters(self) -> str:
        """Kafka's static controller quorum: the three controllers, apart from the brokers."""
        return ",".join(f"{node.kafka_id}@{self.address(node)}:{CONTROLLER_PORT}"
                        for node in self.cluster_nodes("kafka-controller"))

    @property
    def cluster_spark_master(self) -> str:
        return f"spark://{self.address(self.cluster_nodes('spark-master')[0])}:{SPARK_MASTER_PORT}"

    @property
    def cluster_trino(self) -> str:
        return self.address(self.cluster_nodes("trino-coordinator")[0])


def profile_defaults(settings) -> dict[str, object]:
    """What the cluster profile changes, unless the environment says otherwise: the stack's
    services listen at the gateway (so the nodes reach them), use the cluster's engines,
    replicate topics 3 times, and keep their state apart from `make up`'s."""
    return {"host": settings.cluster_gateway, "kafka_bootstrap": settings.cluster_bootstrap,
            "spark_master": settings.cluster_spark_master, "trino_host": settings.cluster_trino,
            "topic_replication": REPLICATION_FACTOR,
            "topic_min_insync": MIN_INSYNC_REPLICAS, "state_dir": settings.state_dir / "cluster",
            "venv_home": settings.venv_dir}
