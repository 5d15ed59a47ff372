"""A Spark standalone cluster from pyspark's own deploy classes: one master, two workers, each in
its node's namespace; the stream job (spark/stream_job.py, the driver) runs its executors there.

SPARK_HOME is the pyspark package, which holds Spark's jars: a worker starts its executors from
it. Master and workers serve Prometheus metrics on their web UIs (Spark's PrometheusServlet).
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from lakewatch.settings import Settings
from lakewatch.settings.cluster import SPARK_MASTER_PORT, SPARK_UI_PORT, SPARK_WORKER_UI_PORT, Node

METRICS = {  # Spark's metrics.properties, as Spark configuration keys
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    "spark.metrics.conf.master.sink.prometheusServlet.path": "/metrics/master/prometheus",
    "spark.metrics.conf.applications.sink.prometheusServlet.path": "/metrics/applications/prometheus",
}


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def node_dir(settings: Settings, node: Node) -> Path:
    return settings.state_dir / "cluster" / node.name


def write_properties(settings: Settings, node: Node) -> Path:
    path = node_dir(settings, node) / "spark.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in METRICS.items()))
    return path


def command(settings: Settings, node: Node) -> list[str]:
    address, classpath = settings.address(node), str(spark_home() / "jars" / "*")
    properties = str(node_dir(settings, node) / "spark.properties")
    java = ["java", "-Xmx256m", "-cp", classpath]
    if node.role == "spark-master":
        return [*java, "org.apache.spark.deploy.master.Master", "--host", address, "--port", str(SPARK_MASTER_PORT),
                "--webui-port", str(SPARK_UI_PORT), "--properties-file", properties]
    return [*java, "org.apache.spark.deploy.worker.Worker", "--host", address, "--webui-port", str(SPARK_WORKER_UI_PORT),
            "--cores", "1", "--memory", settings.spark_worker_memory,
            "--work-dir", str(node_dir(settings, node) / "work"), "--properties-file", properties,
            settings.cluster_spark_master]


def scala_version() -> str:
    """Spark's Scala version, from its core jar's name (spark-core_2.13-4.2.0.jar is 2.13). A
    worker needs it to build an executor's command, as spark-class tells it from the jars."""
    [core] = (spark_home() / "jars").glob("spark-core_*.jar")
    return core.name.split("_", 1)[1].split("-", 1)[0]


def environment(settings: Settings, node: Node) -> dict[str, str]:
    return {"SPARK_HOME": str(spark_home()), "SPARK_SCALA_VERSION": scala_version(),
            "SPARK_LOCAL_IP": settings.address(node)}


def ui_url(settings: Settings, node: Node, path: str = "") -> str:
    port = SPARK_UI_PORT if node.role == "spark-master" else SPARK_WORKER_UI_PORT
    return f"http://{settings.address(node)}:{port}{path}"


def alive_workers(settings: Settings) -> list[str]:
    """The workers the master counts as alive, by host (its web UI's JSON)."""
    master = settings.cluster_nodes("spark-master")[0]
    with urllib.request.urlopen(ui_url(settings, master, "/json/"), timeout=2) as response:
        state = json.load(response)
    return [w["host"] for w in state.get("workers", []) if w.get("state") == "ALIVE"]


def healthy(settings: Settings, node: Node) -> bool:
    """The master answers ALIVE; a worker is registered with it."""
    try:
        if node.role == "spark-master":
            with urllib.request.urlopen(ui_url(settings, node, "/json/"), timeout=2) as response:
                return json.load(response).get("status") == "ALIVE"
        return settings.address(node) in alive_workers(settings)
    except Exception:
        return False
