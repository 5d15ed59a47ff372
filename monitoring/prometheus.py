"""Prometheus for the embedded stack: its scrape config, written from settings, and its command.

Every lakewatch service serves /metrics on the port settings gives it, so the config is
generated, not kept: tests and benchmarks move every port, and one settings module owns them.
The alert rules (monitoring/rules/) and the console page (monitoring/consoles/) are files in
the repo; compose mounts the same rules beside its own config (monitoring/prometheus-compose.yml).
The embedded broker serves its metrics through the JMX exporter agent (kafka/jmx-exporter.yaml),
and so do `make cluster`'s Kafka nodes and compose's (kafka/Dockerfile adds the agent to Apache's
image), each a job of its own. The embedded stack's supervisor (stack/supervisor.py) is a target too: it reports
every service's restarts, crash loops and health, the broker's included.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from lakewatch.settings import Settings
from lakewatch.settings.cluster import NODES, SPARK_UI_PORT, SPARK_WORKER_UI_PORT

MONITORING = Path(__file__).resolve().parent
RULES = MONITORING / "rules"
CONSOLES = MONITORING / "consoles"
# Debian's package ships the console libraries as examples; the official image ships them here.
CONSOLE_LIBRARIES = (Path("/usr/share/doc/prometheus/examples/console_libraries"),
                     Path("/usr/share/prometheus/console_libraries"), Path("/etc/prometheus/console_libraries"))
SCRAPE_INTERVAL = "15s"

# job -> the settings field of its port, and its metrics path. The job is the service's name
# in `make status` and its log's name, which the alerts' texts point to.
JOBS = {
    "ingestion": ("ingestion_port", "/metrics"),
    "stream": ("stream_port", "/metrics"),
    "scorer": ("scorer_port", "/metrics"),
    "mlflow": ("mlflow_port", "/metrics"),
    "serving": ("serving_port", "/metrics"),
    "superset": ("superset_port", "/metrics"),
    "actions": ("actions_port", "/metrics"),
    "rasa": ("rasa_port", "/metrics"),
    "chat": ("chat_port", "/metrics"),
    "trino": ("trino_port", "/metrics"),
    "trino-sync": ("trino_sync_port", "/metrics"),
    "prometheus": ("prometheus_port", "/metrics"),
    # Airflow's metrics: it speaks StatsD to the exporter (stack/services/statsd.py).
    "statsd": ("statsd_metrics_port", "/metrics"),
}
# Trino serves /metrics to a named user that its rules let read system information
# (trino/etc/rules.json); without authentication configured, the name is the whole login.
TRINO_METRICS_USER = "prometheus"
# Jobs of the embedded stack only: its supervisor (stack/supervisor.py: restarts, crash loops)
# and its broker's JMX exporter. Compose restarts its containers itself and has no supervisor,
# and its Kafka is the cluster's six nodes (compose_kafka_targets).
EMBEDDED_JOBS = {
    "supervisor": ("supervisor_port", "/metrics"),
    "broker": ("broker_metrics_port", "/metrics"),
}


# The one-host cluster's nodes (lakewatch/settings/cluster.py), by role: port and metrics path.
# Kafka's brokers and controllers carry make up's JMX exporter agent; Spark's daemons their
# PrometheusServlet.
CLUSTER_ROLES = {
    "kafka-controller": ("broker_metrics_port", "/metrics"),
    "kafka": ("broker_metrics_port", "/metrics"),
    "spark-master": (SPARK_UI_PORT, "/metrics/master/prometheus"),
    "spark-worker": (SPARK_WORKER_UI_PORT, "/metrics/prometheus"),
    "trino-coordinator": ("trino_port", "/metrics"),
    "trino-worker": ("trino_port", "/metrics"),
}


def _path(job: str) -> str:
    node = next((n for n in NODES if n.name == job), None)
    return CLUSTER_ROLES[node.role][1] if node else {**JOBS, **EMBEDDED_JOBS}[job][1]


def _is_trino(job: str) -> bool:
    return job == "trino" or any(n.name == job and n.role.startswith("trino") for n in NODES)


def config(targets: dict[str, str], rule_files: list[str]) -> dict:
    """The prometheus.yml content: one job per service, `targets` giving each one's host:port."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL,
                   "external_labels": {"system": "lakewatch"}},
        "rule_files": rule_files,
        "scrape_configs": [{"job_name": job, "metrics_path": _path(job), "static_configs": [{"targets": [target]}],
                            **({"basic_auth": {"username": TRINO_METRICS_USER}} if _is_trino(job) else {})}
                           for job, target in targets.items()],
    }


def targets(settings: Settings) -> dict[str, str]:
    """Each job's host:port, found as services find each other (settings.peer_url): at `host`
    on one machine, at the service's name, which is its job name, in compose."""
    jobs = JOBS if settings.peers_by_name else {**JOBS, **EMBEDDED_JOBS}
    found = {job: f"{job if settings.peers_by_name else settings.host}:{getattr(settings, port)}"
             for job, (port, _) in jobs.items()}
    if settings.mlflow_url:  # an external tracking server is not ours to watch
        found.pop("mlflow")
    if settings.kafka_bootstrap:  # nor an external Kafka
        found.pop("broker", None)
    if settings.sql_engine != "trino":  # the light stack runs no Trino
        found.pop("trino")
        found.pop("trino-sync")
    if settings.profile == "cluster":
        found.update(cluster_targets(settings))
    elif settings.peers_by_name and not settings.kafka_bootstrap:
        found.update(compose_kafka_targets(settings))
    return found


def compose_kafka_targets(settings: Settings) -> dict[str, str]:
    """Compose's Kafka controllers and brokers (the cluster's nodes, docker-compose.yml), each
    at its service's name and the exporter's port."""
    return {node.name: f"{node.name}:{settings.broker_metrics_port}" for node in NODES
            if CLUSTER_ROLES[node.role][0] == "broker_metrics_port"}


def cluster_targets(settings: Settings) -> dict[str, str]:
    """Every node of the one-host cluster at its own address; its coordinator is the `trino` job."""
    found = {}
    for node in NODES:
        if node.role.startswith("trino") and settings.sql_engine != "trino":
            continue
        port = CLUSTER_ROLES[node.role][0]
        found["trino" if node.role == "trino-coordinator" else node.name] = (
            f"{settings.address(node)}:{getattr(settings, port) if isinstance(port, str) else port}")
    return found


COMPOSE_CONFIG = MONITORING / "prometheus-compose.yml"
COMPOSE_RULES = "/etc/prometheus/rules/alerts.yml"  # where compose mounts monitoring/rules


def prometheus_dir(settings: Settings) -> Path:
    return settings.state_dir / "prometheus"


def config_path(settings: Settings) -> Path:
    return prometheus_dir(settings) / "prometheus.yml"


def write_config(settings: Settings) -> Path:
    path = config_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    rules = [str(p) for p in sorted(RULES.glob("*.yml"))]
    # JSON is YAML too: written by monitoring/prometheus.py on every start (edit that, not this).
    path.write_text(json.dumps(config(targets(settings), rules), indent=1))
    return path


def console_libraries() -> Path | None:
    """The first folder holding prom.lib, which the console page's templates use."""
    return next((p for p in CONSOLE_LIBRARIES if (p / "prom.lib").exists()), None)


def command(settings: Settings) -> list[str]:
    """Debian's prometheus binary with the generated config, a week of data, the console page."""
    binary = shutil.which("prometheus") or "prometheus"
    libraries = console_libraries() or CONSOLE_LIBRARIES[0]
    return [binary, f"--config.file={config_path(settings)}",
            f"--storage.tsdb.path={prometheus_dir(settings) / 'data'}", "--storage.tsdb.retention.time=7d",
            "--storage.tsdb.retention.size=1GB", f"--web.listen-address={settings.host}:{settings.prometheus_port}",
            f"--web.console.templates={CONSOLES}", f"--web.console.libraries={libraries}",
            "--log.format=json"]


def console_url(settings: Settings) -> str:
    return settings.url(settings.prometheus_port, "/consoles/lakewatch.html")


def compose_settings() -> Settings:
    """The settings compose's images run with, as far as Prometheus cares: services by name."""
    from lakewatch import settings as settings_module

    return settings_module.load({"LAKEWATCH_PEERS_BY_NAME": "true"})


def main() -> None:
    """Writes monitoring/prometheus-compose.yml (compose mounts it); a test keeps it current."""
    COMPOSE_CONFIG.write_text("# Written by `python -m monitoring.prometheus`; edit monitoring/prometheus.py.\n"
                              + json.dumps(config(targets(compose_settings()), [COMPOSE_RULES]), indent=1) + "\n")


if __name__ == "__main__":
    main()
