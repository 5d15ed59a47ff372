"""The services of the embedded stack (and of the one-host cluster), in start order, one module each.

Each module's `service(settings)` says how to start its service, which port it needs free,
how to tell it is healthy, what to prepare before it starts (a venv, a migration, secrets)
and what to do once it is up (the broker gets its topics). The runner (stack/runner.py)
knows nothing about any particular service. A new service is a new module here, added to
ORDER.

The stream job starts before ingestion so it is ready when the first records arrive (it would
catch up anyway: it reads every topic from the beginning). Trino and its table registration
start before Superset and the bot, which query it.
"""
from __future__ import annotations

import importlib
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lakewatch.settings import Settings

ORDER = ("broker", "mlflow", "serving", "stream", "scorer", "ingestion", "trino", "trino_sync", "superset", "actions",
         "rasa", "chat", "statsd", "airflow", "prometheus")
# Wide enough for every service name in what up, down and status print (kafka-controller-1).
NAME_WIDTH = 18


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    port: int
    url: str  # what `make up` and `make status` print
    health: Callable[[], bool]
    after_start: Callable[[], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Runs before the process starts (one-time installs, migrations); returns more environment.
    prepare: Callable[[], dict[str, str]] | None = None
    start_timeout: float | None = None  # seconds to become healthy; default settings.start_timeout
    # Runs users' SQL: the runner starts it where the lake is read-only (stack/sandbox.py).
    lake_read_only: bool = False
    # A cluster node's network namespace (stack/cluster/network.py): the runner starts the
    # command inside it, where the port is the node's own, at its own address.
    netns: str | None = None
    # Members of one consensus group (a KRaft controller quorum) stop together, in one wait:
    # one after another, each stop would hand the leadership to a member about to stop too.
    quorum: str | None = None


def http_service(settings: Settings, name: str, command: list[str], port: int, shown: str = "/metrics",
                 **extra) -> Service:
    """A service with the lakewatch convention: healthy when its /health answers 2xx."""
    from lakewatch.service_http import healthy  # here: the hosting images import this module without prometheus_client

    return Service(name=name, command=command, port=port, url=settings.url(port, shown),
                   health=lambda: healthy(settings.url(port, "/health")), **extra)


def venv_python(settings: Settings, venv: str) -> Path:
    return settings.venv_dir / venv / "bin" / "python"


def kafka_healthy(bootstrap: str, timeout: float = 2.0) -> bool:
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:  # a refused TCP connect answers faster than librdkafka's metadata timeout
        socket.create_connection((host, int(port)), timeout=timeout).close()
        # A probe's failure is its answer: librdkafka's own lines about brokers not up yet
        # (it learns every broker from the first) would land on make up's console.
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def services(settings: Settings) -> list[Service]:
    """The services this configuration runs, in start order (an external Kafka or MLflow has none
    here); the cluster profile's nodes come first (stack/cluster/)."""
    found = [importlib.import_module(f"stack.services.{name}").service(settings) for name in ORDER]
    if settings.profile == "cluster":
        from stack.cluster import nodes

        found = nodes.services(settings) + found
    return [s for s in found if s is not None]
