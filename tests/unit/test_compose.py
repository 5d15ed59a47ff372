"""Static checks of docker-compose.yml: no Docker engine runs on the build machines."""
import os
import shutil
import subprocess

import pytest
import yaml

from lakewatch.settings import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
SPEC = yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_for_docker_compose():
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs it (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True,
                            env={**os.environ, "FINNHUB_API_KEY": ""})
    assert result.returncode == 0, result.stderr


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
