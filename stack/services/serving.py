"""MLflow's scoring server for the champion model, following its alias (model/serve.py)."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service, http_service


def service(settings: Settings) -> Service:
    return http_service(settings, "serving", [sys.executable, "-m", "model.serve"], settings.serving_port,
                        "/invocations")
