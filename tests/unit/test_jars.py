"""The JVM jars' pins (stack/jars.py): one Spark across pyspark and its jars, one Kafka across the profiles."""
from __future__ import annotations

import pytest
import yaml

from lakewatch.settings import REPO_ROOT
from stack import jars


def test_spark_jars_are_built_for_the_pinned_pyspark_and_delta_spark():
    jars.check_spark_pins()  # raises with the sentence otherwise
    assert jars.pom_property("spark", "spark.version") == jars.python_pin("pyspark")


def test_a_pyspark_pin_the_jars_do_not_match_stops_with_one_sentence(monkeypatch):
    pins = {"pyspark": "4.3.0", "delta-spark": jars.python_pin("delta-spark")}
    monkeypatch.setattr(jars, "python_pin", pins.__getitem__)
    with pytest.raises(jars.JarsError, match=r"spark.version 4.2.0 .* differs from pyproject.toml's pyspark==4.3.0"):
        jars.check_spark_pins()


def test_compose_runs_the_trino_version_the_embedded_one_runs():
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    version = jars.pom_property("trino", "trino.version")
    assert services["trino"]["image"] == services["trino-worker"]["image"] == f"trinodb/trino:{version}"


def test_compose_runs_the_kafka_and_exporter_versions_the_embedded_broker_runs():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    nodes = [service for name, service in compose["services"].items() if name.startswith("kafka-")]
    assert len(nodes) == 6  # three controllers, three brokers
    assert {n["build"]["dockerfile"] for n in nodes} == {"kafka/Dockerfile"}
    assert [n["build"]["args"] for n in nodes] == [{
        "KAFKA_VERSION": jars.pom_property("kafka", "kafka.version"),
        "JMX_EXPORTER_VERSION": jars.pom_property("kafka", "jmx-exporter.version")}] * 6


@pytest.mark.parametrize("filename, artifact", [
    ("kafka-clients-3.9.2.jar", "kafka-clients"), ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
    ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"), ("javassist-3.30.2-GA.jar", "javassist"),
    ("log4j-slf4j2-impl-2.26.1.jar", "log4j-slf4j2-impl"), ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
])
def test_a_jar_file_name_gives_its_artifact(filename, artifact):
    assert jars._artifact_of(filename) == artifact
