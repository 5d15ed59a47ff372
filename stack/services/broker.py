"""The embedded broker: Apache Kafka in KRaft mode, one node that is broker and controller.

Its jars come from kafka/pom.xml (stack/jars.py); its data lives in <state>/kafka/data,
formatted once, so records survive a broker restart and `make down && make up`, and a
partition's offsets go on where they were. Its logs go to stdout (kafka/log4j2.yaml), its
metrics through the JMX exporter agent (kafka/jmx-exporter.yaml) on broker_metrics_port.
SIGTERM makes Kafka shut down in order (it flushes and closes its logs), which the runner
waits for.
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from ingestion.topics import ensure_topics
from lakewatch.settings import REPO_ROOT, Settings
from stack import jars
from stack.services import Service, kafka_healthy

CONFIG_DIR = REPO_ROOT / "kafka"


def kafka_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def properties(settings: Settings) -> dict[str, str]:
    """server.properties of a single-node KRaft cluster on loopback."""
    host, broker, controller = settings.host, settings.broker_port, settings.controller_port
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller}",
        "listeners": f"PLAINTEXT://{host}:{broker},CONTROLLER://{host}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{host}:{broker}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(kafka_dir(settings) / "data"),
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Few consumers: a small offsets topic starts in a fraction of the default 50 partitions' time.
        "offsets.topic.num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created by ensure_topics with their partition counts, never by a typo.
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }


def _write_properties(settings: Settings) -> Path:
    path = kafka_dir(settings) / "server.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in properties(settings).items()))
    return path


def classpath(settings: Settings) -> str:
    """Every jar of the set, as Java's own wildcard: a command line built without looking at files
    (`make status` and `make down` build it too, on machines that never fetched the jars)."""
    return str(settings.jars_dir / "kafka" / "*")


def _agent(settings: Settings) -> Path:
    return settings.jars_dir / "kafka" / f"jmx_prometheus_javaagent-{jars.pom_property('kafka', 'jmx-exporter.version')}.jar"


def cluster_id() -> str:
    """A new cluster id, as Kafka writes them: a random UUID in URL-safe base64.

    Like Kafka's own Uuid.randomUuid, never one starting with a dash: the storage
    tool's argument parser would read it as an option (one id in 64 did).
    """
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def format_storage(settings: Settings) -> None:
    """Format the data folder once (a new cluster id); a formatted one is left as it is."""
    props = _write_properties(settings)
    if (kafka_dir(settings) / "data" / "meta.properties").exists():
        return
    jars.classpath("kafka")  # one sentence if the jars were never fetched
    if shutil.which("java") is None:
        raise RuntimeError("the broker needs Java, which is missing; install it with: "
                           "apt-get install -y openjdk-17-jre-headless")
    done = subprocess.run(["java", "-cp", classpath(settings), "kafka.tools.StorageTool", "format", "--standalone",
                           f"--cluster-id={cluster_id()}", "--config", str(props)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"formatting the broker's storage in {kafka_dir(settings) / 'data'} failed: "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")


def command(settings: Settings, heap: str | None = None, properties_path: Path | None = None,
            metrics_host: str | None = None) -> list[str]:
    """The broker's command line (the storage must be formatted first: format_storage); a cluster
    node (stack/cluster/kafka.py) has its own properties and metrics address."""
    heap = heap or settings.broker_heap
    return ["java", f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={CONFIG_DIR / 'log4j2.yaml'}",
            f"-javaagent:{_agent(settings)}={metrics_host or settings.host}:{settings.broker_metrics_port}:"
            f"{CONFIG_DIR / 'jmx-exporter.yaml'}",
            "-cp", classpath(settings), "kafka.Kafka", str(properties_path or kafka_dir(settings) / "server.properties")]


# Kafka's command-line tools by the names of their scripts (kafka-<name>.sh), from the broker's jars.
TOOLS = {
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}


def tool_command(settings: Settings, tool: str, args: list[str]) -> list[str]:
    """`kafka-<tool>.sh args` against this stack's broker (--bootstrap-server added if not given)."""
    if tool not in TOOLS:
        raise ValueError(f"no Kafka tool {tool!r}; there are: {', '.join(TOOLS)}")
    if "--bootstrap-server" not in args:
        args = ["--bootstrap-server", settings.bootstrap_servers, *args]
    return ["java", "-Xmx256m", f"-Dlog4j2.configurationFile={CONFIG_DIR / 'log4j2-tools.yaml'}",
            "-cp", classpath(settings), TOOLS[tool], *args]


def service(settings: Settings) -> Service | None:
    if settings.kafka_bootstrap:  # an external Kafka needs no embedded broker
        return None

    def prepare() -> dict[str, str]:
        format_storage(settings)
        return {}

    return Service(name="broker", command=command(settings), port=settings.broker_port,
                   url=f"kafka://{settings.bootstrap_servers}", health=lambda: kafka_healthy(settings.bootstrap_servers),
                   prepare=prepare, after_start=lambda: ensure_topics(settings))
