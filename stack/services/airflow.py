"""Apache Airflow, which retrains the model (airflow/dags/lakewatch_retrain.py): `airflow standalone`
in its own venv, on SQLite under the state folder, its scheduler running tasks with the
LocalExecutor, its metrics in StatsD to the exporter (stack/services/statsd.py).

Its first start writes airflow.cfg into AIRFLOW_HOME with the instance's own secrets (the
Fernet key, the JWT secret); everything else is set here, in the environment, where Airflow
reads AIRFLOW__SECTION__KEY before its config file. The UI's admin password is generated here,
per install, into the passwords file (PASSWORDS): left to `airflow standalone`, it would be
printed into the service's log.
"""
from __future__ import annotations

import json
import os
import secrets

import requests

from lakewatch.settings import REPO_ROOT, Settings
from stack.bootstrap import ensure_venv
from stack.services import Service, venv_python

DAGS = REPO_ROOT / "airflow" / "dags"
PASSWORDS = "simple_auth_manager_passwords.json.generated"


def environment(settings: Settings) -> dict[str, str]:
    """What every Airflow process here needs: its home, the DAGs, ports, the executor, StatsD."""
    api = settings.url(settings.airflow_port)
    return {
        "AIRFLOW_HOME": str(settings.airflow_dir),
        # standalone starts its components as `airflow ...`, found on PATH
        "PATH": f"{venv_python(settings, 'airflow').parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # One retrain at a time needs one worker; the default, 32 forked workers, held 4 GB.
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__API__HOST": settings.host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": settings.host,
        "AIRFLOW__METRICS__STATSD_PORT": str(settings.statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",  # the user admin, with the role admin
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(settings.airflow_dir / PASSWORDS),
    }


def prepare(settings: Settings) -> dict[str, str]:
    """The venv (built once), and the admin's password, generated once, readable by its owner only."""
    ensure_venv("airflow")
    passwords = settings.airflow_dir / PASSWORDS
    if not passwords.exists():
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
    return environment(settings)


def healthy(settings: Settings) -> bool:
    """Airflow's own health: its metadata database, scheduler, triggerer and DAG processor."""
    try:
        response = requests.get(settings.url(settings.airflow_port, "/api/v2/monitor/health"), timeout=3)
        components = response.json()
    except (requests.RequestException, ValueError):
        return False
    return response.ok and all(c.get("status") == "healthy" for c in components.values())


def service(settings: Settings) -> Service:
    return Service(name="airflow", command=[str(venv_python(settings, "airflow").parent / "airflow"), "standalone"],
                   port=settings.airflow_port, url=settings.url(settings.airflow_port, "/dags/lakewatch_retrain"),
                   health=lambda: healthy(settings), prepare=lambda: prepare(settings),
                   start_timeout=3 * settings.start_timeout)  # its first start migrates its database
