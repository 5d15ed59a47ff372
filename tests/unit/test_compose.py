"""Static checks of docker-compose.yml: no Docker engine runs on the build machines."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from lakewatch import settings
from lakewatch.settings import REPO_ROOT
from spark.session import spark_conf
from stack import prerequisites
from tests.unit.test_trino_config import properties

COMPOSE = REPO_ROOT / "docker-compose.yml"
SPEC = yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_for_docker_compose():
    binary = shutil.which("docker-compose")
    if binary is None:
        advice = prerequisites.advice("make test", [prerequisites.REQUIREMENTS["docker-compose"]])
        if os.environ.get("CI"):
            pytest.fail(advice)
        pytest.skip(advice)
    # Every variable of .env.example set, the required (empty) ones to a placeholder: a user's .env.
    filled = {name: value or "placeholder" for name, value in env_example().items()}
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            env={**os.environ, **filled})
    assert result.returncode == 0, result.stderr


def env_example() -> dict[str, str]:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_variable_compose_reads_is_in_env_example_without_a_real_secret():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    example = env_example()
    assert used == set(example)
    assert all(example[name] == "" for name in example if re.search("PASSWORD|SECRET|KEY", name))


def test_every_image_is_pinned_and_every_build_file_exists():
    for name, service in SPEC["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name} image {image!r} is not pinned"
        if "build" in service:
            assert (REPO_ROOT / service["build"]["context"] / service["build"]["dockerfile"]).exists(), name


def test_host_ports_are_unique_and_loopback_only():
    published = [port for service in SPEC["services"].values() for port in service.get("ports", [])]
    assert len(published) == len(set(p.rsplit(":", 2)[-2] for p in published))
    assert all(p.startswith("127.0.0.1:") for p in published)


def test_secrets_are_not_written_into_the_file():
    ingestion_env = SPEC["services"]["ingestion"]["environment"]
    assert ingestion_env["FINNHUB_API_KEY"] == "${FINNHUB_API_KEY:-}"


def test_superset_takes_its_secrets_from_the_environment_and_metadata_from_postgres():
    env = SPEC["services"]["superset"]["environment"]
    assert env["SUPERSET_SECRET_KEY"] == "${SUPERSET_SECRET_KEY:-}"
    assert env["SUPERSET_ADMIN_PASSWORD"] == "${SUPERSET_ADMIN_PASSWORD:-}"
    assert env["SUPERSET_DATABASE_URI"].startswith("postgresql+psycopg2://superset:${SUPERSET_DB_PASSWORD:-}@superset-db")
    assert SPEC["services"]["superset-db"]["environment"]["POSTGRES_PASSWORD"] == "${SUPERSET_DB_PASSWORD:-}"
    assert SPEC["services"]["superset"]["depends_on"]["trino"] == {"condition": "service_healthy"}


def test_every_mounted_file_or_folder_exists():
    mounts = [v.split(":")[0] for service in SPEC["services"].values() for v in service.get("volumes", [])]
    local = [m for m in mounts if m.startswith("./")]
    assert local and all((REPO_ROOT / m).exists() for m in local), [m for m in local if not (REPO_ROOT / m).exists()]


def test_prometheus_in_compose_scrapes_every_service_by_name_with_the_repo_rules():
    import json

    from monitoring import prometheus

    text = prometheus.COMPOSE_CONFIG.read_text()
    config = json.loads(text.split("\n", 1)[1])
    assert config == prometheus.config(prometheus.targets(prometheus.compose_settings()), [prometheus.COMPOSE_RULES])
    assert set(prometheus.JOBS) <= set(SPEC["services"])  # a job's target host is its service name
    assert "./monitoring/rules:/etc/prometheus/rules:ro" in SPEC["services"]["prometheus"]["volumes"]


def environment(name: str) -> dict[str, str]:
    """A service's environment: its image's ENV lines (for images built here) under compose's own."""
    service, env = SPEC["services"][name], {}
    dockerfile = service.get("build", {}).get("dockerfile") or next(
        (s["build"]["dockerfile"] for s in SPEC["services"].values()
         if s.get("image") == service.get("image") and "build" in s), None)
    if dockerfile:
        text = (REPO_ROOT / dockerfile).read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith("ENV "):
                env.update(dict(pair.split("=", 1) for pair in line[4:].split()))
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env


# What each of the project's services needs from its environment to work in compose: the
# variables its code reads without a usable default here (os.environ reads, or settings whose
# embedded default points at 127.0.0.1).
NEEDS = {
    "ingestion": {"LAKEWATCH_KAFKA_BOOTSTRAP", "FINNHUB_API_KEY", "LAKEWATCH_PROFILE"},
    "stream": {"LAKEWATCH_KAFKA_BOOTSTRAP", "LAKEWATCH_PROFILE", "LAKEWATCH_STATE_DIR", "LAKEWATCH_HOST",
               "LAKEWATCH_SPARK_DRIVER_HOST"},
    "trino-sync": {"LAKEWATCH_TRINO_HOST", "LAKEWATCH_PROFILE", "LAKEWATCH_STATE_DIR"},
    "superset": {"SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "SUPERSET_DATABASE_URI", "LAKEWATCH_TRINO_HOST",
                 "LAKEWATCH_CHATBOT_URL", "LAKEWATCH_PROFILE"},
    "mlflow": {"MLFLOW_DB_PASSWORD", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"},
    "serving": {"LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_HOST"},
    "scorer": {"LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_HOST", "LAKEWATCH_STATE_DIR"},
    "actions": {"LAKEWATCH_TRINO_HOST", "LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_PROFILE", "LAKEWATCH_HOST",
                "LAKEWATCH_SUPERSET_URL"},
    "rasa": {"LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_HOST"},
    "chat": {"LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_HOST"},
    # Its tasks run model/retrain.py with the core venv's Python, found under LAKEWATCH_VENV_HOME.
    "airflow": {"LAKEWATCH_PEERS_BY_NAME", "LAKEWATCH_STATE_DIR", "LAKEWATCH_VENV_HOME", "AIRFLOW_HOME",
                "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET",
                "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__METRICS__STATSD_HOST"},
}


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_every_variable_a_service_reads_is_set_for_it(name):
    missing = NEEDS[name] - set(environment(name))
    assert missing == set()


def test_the_environment_table_knows_every_variable_the_code_reads():
    read = set()
    for folder in ("lakewatch", "ingestion", "spark", "model", "chatbot", "superset", "trino", "monitoring"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r'os\.environ(?:\.get)?[\[(]"([A-Z_]+)"', path.read_text()))
    # Read by the embedded stack's runner or with a default that is right in compose too.
    elsewhere = {"PYENV_ROOT", "PYTHONPATH", "PYSPARK_PYTHON", "LAKEWATCH_LOG_LEVEL", "SUPERSET_ADMIN_USER"}
    assert read - elsewhere <= set().union(*NEEDS.values())




def test_spark_cluster_executors_can_reach_the_driver():
    services = SPEC["services"]
    # Executors on spark-worker connect to the driver at the stream service's name; it binds to all interfaces.
    compose = spark_conf(settings.load(environment("stream")), [])
    assert (compose["spark.driver.host"], compose["spark.driver.bindAddress"]) == ("stream", "0.0.0.0")
    assert compose["spark.driver.host"] in services
    # The master and workers run the stream image, whose $SPARK_HOME/jars holds Spark's Kafka source.
    assert services["spark-master"]["image"] == services["spark-worker"]["image"] == services["stream"]["image"]
    # The embedded profile is unchanged: local[2] on loopback.
    embedded = spark_conf(settings.load({}), [])
    assert (embedded["spark.master"], embedded["spark.driver.host"], embedded["spark.driver.bindAddress"]) == (
        "local[2]", "127.0.0.1", "127.0.0.1")


def test_the_stream_job_keeps_every_folder_of_its_own_under_the_state_folder(tmp_path):
    conf = spark_conf(settings.load({"LAKEWATCH_STATE_DIR": str(tmp_path)}), [])
    for key in ("spark.local.dir", "spark.sql.warehouse.dir"):
        assert Path(conf[key]).is_relative_to(tmp_path), key


def test_trino_workers_share_the_coordinators_catalog_and_volumes():
    coordinator, worker = SPEC["services"]["trino"], SPEC["services"]["trino-worker"]
    own_config = "./trino/etc-worker/config.properties:/etc/trino/config.properties:ro"
    assert worker["image"] == coordinator["image"]
    # The coordinator's config folder (catalog included), lake and file metastore, plus the worker's server config.
    assert own_config in worker["volumes"]
    assert [v for v in worker["volumes"] if v != own_config] == coordinator["volumes"]
    # Scalable with --scale trino-worker=N: no host port, no fixed container name; started once the coordinator is healthy.
    assert "ports" not in worker and "container_name" not in worker and worker["profiles"]
    assert worker["depends_on"] == {"trino": {"condition": "service_healthy"}} and worker["healthcheck"]["test"]

    trino = REPO_ROOT / "trino"
    server = properties(trino / "etc" / "config.properties")
    worker_server = properties(trino / "etc-worker" / "config.properties")
    assert server["node-scheduler.include-coordinator"] == "true"  # the coordinator serves alone too
    assert worker_server["coordinator"] == "false"
    assert worker_server["discovery.uri"] == f"http://trino:{server['http-server.http.port']}"
    shared = set(server) - {"coordinator", "discovery.uri", "node-scheduler.include-coordinator"}
    assert {k: worker_server[k] for k in shared} == {k: server[k] for k in shared}
    # The image's run-trino sets node.id to the container's hostname unless node.properties matches
    # grep 'node.id': then every replica would share one id.
    assert not re.search("node.id", (trino / "etc" / "node.properties").read_text())


def test_the_checkpoint_file_manager_named_in_the_spark_conf_exists_in_this_spark():
    # Spark 4 moved these classes to another package; a wrong name fails only when a query starts.
    import pyspark

    conf = spark_conf(settings.load({}), [])
    jar = next((Path(pyspark.__file__).parent / "jars").glob("spark-sql_*.jar"))
    class_file = conf["spark.sql.streaming.checkpointFileManagerClass"].replace(".", "/") + ".class"
    with zipfile.ZipFile(jar) as classes:
        assert class_file in classes.namelist()
    assert conf["spark.hadoop.fs.file.impl"] == "org.apache.hadoop.fs.RawLocalFileSystem"


def every_dockerfile() -> list[str]:
    """Compose's images and the Spaces' (hosting/): every Dockerfile outside the state folder and git's."""
    folders = [d for d in REPO_ROOT.iterdir() if d.is_dir() and d.name not in ("var", ".git", "node_modules")]
    return sorted(str(p.relative_to(REPO_ROOT)) for d in folders for p in d.rglob("Dockerfile*"))


@pytest.mark.parametrize("dockerfile", every_dockerfile())
def test_hadolint_finds_no_error_in_any_dockerfile(dockerfile):
    """No image is built here, so a linter is the first reader of every Dockerfile: compose's and
    the Spaces'. hadolint comes with the test tools (pyproject.toml), beside this Python."""
    binary = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(binary), "--no-color", "--failure-threshold", "error", str(REPO_ROOT / dockerfile)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def built_dockerfiles() -> list[str]:
    return sorted({s["build"]["dockerfile"] for s in SPEC["services"].values() if "build" in s})


@pytest.mark.parametrize("dockerfile", built_dockerfiles())
def test_every_file_an_image_copies_exists_and_its_command_runs_a_module_of_the_repo(dockerfile):
    """No Docker engine here: a COPY of a moved file, or a CMD running a script by a path that
    no longer exists, would show only at the first build. lakewatch's own code runs as
    `python -m` (no sys.path edits); Superset's provisioning by path, like its config."""
    text = (REPO_ROOT / dockerfile).read_text().replace("\\\n", " ")
    copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    missing = [src for sources in copies for src in sources if not src.startswith("--") and not (REPO_ROOT / src).exists()]
    assert missing == []
    commands = [line for line in text.splitlines() if line.startswith("CMD ")]
    commands += [" ".join(s["command"]) for s in SPEC["services"].values()
                 if isinstance(s.get("command"), list) and s.get("build", {}).get("dockerfile") == dockerfile]
    for module in re.findall(r'"-m", "([\w.]+)"|-m ([\w.]+)', " ".join(commands)):
        module = next(m for m in module if m)
        path = REPO_ROOT.joinpath(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), f"{dockerfile} runs {module}"
    scripts = re.findall(r'python3? "?(/?[\w/]+\.py)', " ".join(commands))
    assert [s for s in scripts if not s.endswith("superset/provision.py")] == [], f"{dockerfile} runs a script by path"
