"""MLflow's tracking server and model registry, on SQLite and a folder of artifacts."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service, http_service

# MLflow's background job runner would add about 2.5 GB of workers nothing here uses.
ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def command(settings: Settings) -> list[str]:
    """SQLite and artifacts under the state folder, one worker, Prometheus metrics at /metrics."""
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)  # SQLite needs the folder of its file
    return [sys.executable, "-m", "mlflow", "server", "--host", settings.host, "--port", str(settings.mlflow_port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}",
            "--artifacts-destination", str(settings.mlflow_dir / "artifacts"),
            "--expose-prometheus", str(settings.mlflow_dir / "prometheus")]


def service(settings: Settings) -> Service | None:
    if settings.mlflow_url:  # an external tracking server needs no embedded one
        return None
    return http_service(settings, "mlflow", command(settings), settings.mlflow_port, "", env=ENV)
