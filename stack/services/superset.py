"""Apache Superset on the lake: its venv, its secrets, provisioning (superset/provision.py), then gunicorn."""
from __future__ import annotations

import os
import secrets as token
import subprocess

from lakewatch.settings import REPO_ROOT, Settings
from stack.bootstrap import ensure_venv
from stack.services import NAME_WIDTH, Service, http_service, venv_python

CONFIG = REPO_ROOT / "superset" / "superset_config.py"


def secrets(settings: Settings) -> dict[str, str]:
    """SUPERSET_SECRET_KEY and the admin's credentials for Superset's processes. A deployment
    sets them in its environment (lakewatch/settings/ reads them); the embedded profile
    generates a key per install, kept under the state folder, and its admin password defaults
    to "admin", the only default password lakewatch has."""
    key, password = settings.superset_secret_key, settings.superset_admin_password
    if settings.profile != "embedded" and not (key and password):
        raise ValueError(f"the {settings.profile} profile needs SUPERSET_SECRET_KEY and SUPERSET_ADMIN_PASSWORD in "
                         "the environment (see .env.example)")
    if not key:
        path = settings.superset_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(token.token_urlsafe(48))
        key = path.read_text().strip()
    return {"SUPERSET_SECRET_KEY": key, "SUPERSET_ADMIN_USER": settings.superset_admin_user,
            "SUPERSET_ADMIN_PASSWORD": password or "admin"}


def environment(settings: Settings) -> dict[str, str]:
    """The environment any process of Superset's venv needs: its secrets and lakewatch's config."""
    return {**os.environ, **secrets(settings), "SUPERSET_CONFIG_PATH": str(CONFIG)}


def prepare(settings: Settings, say=print) -> dict[str, str]:
    """Superset's venv (built once), then superset/provision.py: metadata DB, admin, dashboards."""
    ensure_venv("superset")
    env = environment(settings)
    say(f"  {'superset':<{NAME_WIDTH}} preparing: metadata database, admin, datasets and dashboards ...")
    log_path = settings.log_dir / "superset.log"
    with open(log_path, "ab") as log:
        done = subprocess.run([str(venv_python(settings, "superset")), str(REPO_ROOT / "superset" / "provision.py")],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"Superset's provisioning failed (exit code {done.returncode}); see {log_path}")
    return {key: env[key] for key in ("SUPERSET_SECRET_KEY", "SUPERSET_CONFIG_PATH")}  # not the admin password


def command(settings: Settings) -> list[str]:
    """gunicorn with one worker and eight threads: charts of a dashboard load in parallel. A second
    worker gained 0.1-0.2 s per dashboard on two cores (docs/benchmarks.md), and would need
    Prometheus' multiprocess mode, or each scrape of /metrics would see one worker's counters."""
    return [str(venv_python(settings, "superset").parent / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "8",
            "--timeout", "120", "--graceful-timeout", "10", "-b", f"{settings.host}:{settings.superset_port}",
            "superset.app:create_app()"]


def service(settings: Settings) -> Service:
    return http_service(settings, "superset", command(settings), settings.superset_port, "/",
                        prepare=lambda: prepare(settings), lake_read_only=True)  # SQL Lab takes users' SQL
