"""The one-host cluster's definitions (lakewatch/settings/cluster.py, stack/cluster/) and
docker-compose.yml's distributed profile agree; checked without starting either."""
import ipaddress

import pytest
import yaml

from lakewatch.settings import REPO_ROOT, load
from lakewatch.settings.cluster import CONTROLLER_PORT, NODES, SPARK_MASTER_PORT
from monitoring import prometheus
from stack.cluster import kafka, spark, trino
from stack.services import services
from stack.services.trino import read_properties

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture
def settings(tmp_path):
    return load({"LAKEWATCH_PROFILE": "cluster", "LAKEWATCH_STATE_DIR": str(tmp_path)})


def test_every_node_has_its_own_address_in_the_clusters_subnet(settings):
    subnet = ipaddress.ip_network(f"{settings.cluster_subnet}.0/24")
    addresses = [settings.address(node) for node in NODES] + [settings.cluster_gateway]
    assert len(set(addresses)) == len(addresses) and all(ipaddress.ip_address(a) in subnet for a in addresses)
    assert len({node.name for node in NODES}) == len(NODES)


def test_the_cluster_profile_points_the_stack_at_the_clusters_engines(settings, tmp_path):
    assert settings.host == "10.77.0.1"
    assert settings.bootstrap_servers == "10.77.0.11:9092,10.77.0.12:9092,10.77.0.13:9092"
    assert settings.spark_master == "spark://10.77.0.21:7077" and settings.trino_url.startswith("trino://lakewatch@10.77.0.31:8080/")
    assert (settings.topic_replication, settings.topic_min_insync) == (3, 2)
    names = [s.name for s in services(settings)]
    assert names[:len(NODES)] == [node.name for node in NODES]  # the engines first
    assert "broker" not in names and "trino" in names and names.count("trino") == 1  # the coordinator node
    assert load({"LAKEWATCH_PROFILE": "cluster"}).state_dir.name == "cluster"  # apart from make up's state


def test_three_controllers_form_one_static_quorum_apart_from_the_brokers(settings):
    controllers, brokers = settings.cluster_nodes("kafka-controller"), settings.cluster_nodes("kafka")
    configs = {node.name: kafka.properties(settings, node) for node in controllers + brokers}
    assert [configs[n.name]["node.id"] for n in brokers] == ["1", "2", "3"]  # partitions name them as leaders
    assert [configs[n.name]["node.id"] for n in controllers] == ["101", "102", "103"]
    assert {c["controller.quorum.voters"] for c in configs.values()} == {
        "101@10.77.0.14:9093,102@10.77.0.15:9093,103@10.77.0.16:9093"}
    for node in controllers:
        config = configs[node.name]
        assert config["process.roles"] == "controller" and "advertised.listeners" not in config
        assert config["listeners"] == f"CONTROLLER://{settings.address(node)}:9093"
        assert config["default.replication.factor"] == "3"  # they create the topics
    for node in brokers:
        config, address = configs[node.name], settings.address(node)
        assert config["process.roles"] == "broker" and config["listeners"] == f"PLAINTEXT://{address}:9092"
        assert "default.replication.factor" not in config  # Kafka warns it is the controllers'
    for config in configs.values():
        assert config["min.insync.replicas"] == "2"
        assert config["offsets.topic.replication.factor"] == "3" and config["unclean.leader.election.enable"] == "false"
        assert "controller.quorum.bootstrap.servers" not in config
    assert len({c["log.dirs"] for c in configs.values()}) == 6


def test_down_stops_every_broker_before_the_quorum_that_approves_its_stop(settings):
    names = [s.name for s in services(settings)]
    place = {role: [names.index(n.name) for n in settings.cluster_nodes(role)] for role in ("kafka-controller", "kafka")}
    assert max(place["kafka-controller"]) < min(place["kafka"])  # down stops the last started first
    quorum = {s.name: s.quorum for s in services(settings)}
    assert {quorum[n.name] for n in settings.cluster_nodes("kafka-controller")} == {"kafka-controllers"}
    assert not any(quorum[n.name] for n in settings.cluster_nodes("kafka"))


def test_composes_kafka_nodes_are_the_clusters(settings):
    voters = ",".join(f"{n.kafka_id}@{n.name}:{CONTROLLER_PORT}" for n in settings.cluster_nodes("kafka-controller"))
    for node in settings.cluster_nodes("kafka-controller") + settings.cluster_nodes("kafka"):
        ours, theirs = kafka.properties(settings, node), COMPOSE[node.name]["environment"]
        assert theirs["KAFKA_NODE_ID"] == ours["node.id"] and theirs["KAFKA_PROCESS_ROLES"] == ours["process.roles"]
        assert theirs["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        for key in ("default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
                    "unclean.leader.election.enable"):
            assert theirs.get("KAFKA_" + key.replace(".", "_").upper()) == ours.get(key), key
    for node in settings.cluster_nodes("kafka"):
        assert set(COMPOSE[node.name]["depends_on"]) == {n.name for n in settings.cluster_nodes("kafka-controller")}
    assert not any(name == "kafka" for name in COMPOSE)


def test_composes_spark_and_trino_clusters_have_the_clusters_nodes_and_ports(settings):
    for role, service in (("spark-worker", "spark-worker"), ("trino-worker", "trino-worker")):
        assert COMPOSE[service]["deploy"]["replicas"] == len(settings.cluster_nodes(role))
    assert f"--port {SPARK_MASTER_PORT}" in COMPOSE["spark-master"]["command"][-1]
    assert COMPOSE["spark-worker"]["command"][-1].endswith(f"spark://spark-master:{SPARK_MASTER_PORT}")
    assert spark.command(settings, settings.cluster_nodes("spark-worker")[0])[-1] == settings.cluster_spark_master
    worker_file = read_properties(trino.WORKER_FILE)
    assert worker_file["discovery.uri"] == f"http://trino:{settings.trino_port}"
    for node in settings.cluster_nodes("trino-worker"):
        ours = trino.config(settings, node)["config.properties"]
        assert ours["coordinator"] == "false" and ours["discovery.uri"] == f"http://{settings.cluster_trino}:{settings.trino_port}"
        assert ours["node.id"] == node.name


def test_prometheus_scrapes_every_node_of_the_cluster(settings):
    targets = prometheus.targets(settings)
    assert targets["trino"] == "10.77.0.31:8080" and targets["kafka-2"] == "10.77.0.12:9105"
    assert {n.name for n in NODES} - {"trino"} <= set(targets)
    assert targets["kafka-controller-1"] == "10.77.0.14:9105"


def test_a_cluster_whose_brokers_were_its_controllers_is_named_not_started(settings):
    node = settings.cluster_nodes("kafka")[0]
    home = kafka.node_dir(settings, node)
    home.mkdir(parents=True)
    (home / "server.properties").write_text("process.roles=broker,controller\nnode.id=1\n")
    with pytest.raises(RuntimeError, match="brokers were its controllers too .* remove that folder"):
        kafka.format_storage(settings, node)
