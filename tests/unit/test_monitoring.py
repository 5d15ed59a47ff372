"""Prometheus's config, alert rules and console page, checked with Debian's promtool: the
config and rules are valid, every alert fires in its unit test, and every metric they use is
one a lakewatch service, Airflow's StatsD mapping or Kafka's JMX exporter exports."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from stack import prerequisites, services
from lakewatch import settings as settings_module
from lakewatch.settings import REPO_ROOT
from monitoring import prometheus

MONITORING = REPO_ROOT / "monitoring"
SOURCES = ("ingestion", "spark", "model", "chatbot", "lakewatch", "stack")


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(prerequisites.advice("make test", [prerequisites.REQUIREMENTS["promtool"]]))
    return binary


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def alerts() -> list[dict]:
    return [rule for path in sorted((MONITORING / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def exported_metrics() -> set[str]:
    """Every lakewatch_* metric name a service declares (prometheus_client adds the suffixes)."""
    names = set()
    for folder in SOURCES:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r'"(lakewatch_[a-z0-9_]+)"', path.read_text()))
    return names


def kafka_exported() -> set[str]:
    """Every kafka_* name the JMX exporter's rules give (kafka/jmx-exporter.yaml), each `$1`
    spelled out from its pattern's first group of alternatives, lower-cased as it says."""
    config = yaml.safe_load((REPO_ROOT / "kafka" / "jmx-exporter.yaml").read_text())
    names = set()
    for rule in config["rules"]:
        first = re.search(r"\(([A-Za-z0-9|]+)\)", rule["pattern"])
        for value in (first.group(1).split("|") if first and "$1" in rule["name"] else [""]):
            names.add(rule["name"].replace("$1", value).lower())
    return names


def test_the_generated_config_passes_promtool(promtool, tmp_path):
    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path)})
    done = run(promtool, "check", "config", prometheus.write_config(settings))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_promtool(promtool):
    done = run(promtool, "check", "rules", *sorted((MONITORING / "rules").glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_passes_its_promtool_unit_tests(promtool):
    done = run(promtool, "test", "rules", MONITORING / "tests" / "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_test_where_it_fires():
    tests = yaml.safe_load((MONITORING / "tests" / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert {rule["alert"] for rule in alerts()} == fired


def dashboards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))}


def test_grafana_dashboards_cover_the_pipeline_the_model_and_ingestion_from_the_provisioned_source():
    boards = dashboards()
    assert set(boards) == {"pipeline-health", "model-serving", "ingestion"}
    source = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (uid,) = [d["uid"] for d in source["datasources"]]
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for board in boards.values():
        assert board["panels"] and all(p["datasource"]["uid"] == uid and p["targets"] for p in board["panels"])
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_alerts_the_console_and_the_dashboards_use_only_metrics_the_services_export():
    # Airflow's metrics, and the drift measure's it runs, come through statsd_exporter under the
    # names its mapping gives them.
    mapped = {m["name"] for m in yaml.safe_load((MONITORING / "statsd-mapping.yml").read_text())["mappings"]}
    exported = exported_metrics() | mapped
    texts = [rule["expr"] for rule in alerts()] + [(MONITORING / "consoles" / "lakewatch.html").read_text()]
    texts += [t["expr"] for board in dashboards().values() for p in board["panels"] for t in p["targets"]]
    # A label's value (dag_id="lakewatch_retrain") is not a metric.
    used = {name for text in texts for name in re.findall(r'(?<!=")\b(lakewatch_[a-z0-9_]+)', text)}
    unknown = {n for n in used if n not in exported and re.sub(r"_(bucket|count|sum)$", "", n) not in exported}
    assert used and unknown == set()
    airflow = {name for text in texts for name in re.findall(r"\b(airflow_[a-z0-9_]+)", text)}
    assert airflow and airflow <= mapped
    kafka = {name for text in texts for name in re.findall(r"\b(kafka_[a-z0-9_]+)", text)}
    assert kafka and kafka <= kafka_exported()


def test_prometheus_scrapes_every_service_that_serves_metrics():
    settings = settings_module.load({})
    names = {s.name for s in services.services(settings)}
    # Airflow speaks StatsD: the statsd job is its metrics.
    assert names == set(prometheus.JOBS) | {"broker", "airflow"}
    # The supervisor reports every service; the broker's JMX exporter runs in the embedded stack only.
    assert set(prometheus.EMBEDDED_JOBS) == {"supervisor", "broker"}


def test_composes_kafka_nodes_serve_the_exporters_metrics_which_prometheus_scrapes_and_health_checks_leave_alone():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    dockerfile = (REPO_ROOT / "kafka" / "Dockerfile").read_text()
    settings = prometheus.compose_settings()
    nodes = settings.cluster_nodes("kafka-controller") + settings.cluster_nodes("kafka")
    # The image's agent and config, where every node's KAFKA_OPTS loads them from.
    assert "/jmx_prometheus_javaagent-${JMX_EXPORTER_VERSION}.jar \\\n    /opt/jmx-exporter/agent.jar\n" in dockerfile
    assert "COPY --chown=appuser:appuser kafka/jmx-exporter.yaml /opt/jmx-exporter/config.yaml" in dockerfile
    for node in nodes:
        assert compose[node.name]["environment"]["KAFKA_OPTS"] == (
            f"-javaagent:/opt/jmx-exporter/agent.jar={settings.broker_metrics_port}:/opt/jmx-exporter/config.yaml")
        # A health check's tool is a JVM too: with the agent it would die on the port the node holds.
        assert compose[node.name]["healthcheck"]["test"][1].startswith("KAFKA_OPTS= /opt/kafka/bin/")
    targets = prometheus.targets(settings)
    assert {n.name: targets.get(n.name) for n in nodes} == {n.name: f"{n.name}:9105" for n in nodes}
    config = json.loads((MONITORING / "prometheus-compose.yml").read_text().split("\n", 1)[1])
    assert {j["job_name"] for j in config["scrape_configs"]} >= {n.name for n in nodes}


def test_the_supervisor_is_scraped_in_the_embedded_stack_and_not_in_compose_which_restarts_containers():
    embedded = prometheus.targets(settings_module.load({"LAKEWATCH_SUPERVISOR_PORT": "9999"}))
    assert embedded["supervisor"] == "127.0.0.1:9999"
    assert "supervisor" not in prometheus.targets(prometheus.compose_settings())
