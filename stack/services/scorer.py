"""The scorer (model/score.py); once it is up, the first model trains if its history waits for one."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack import first_model
from stack.services import Service, http_service


def service(settings: Settings) -> Service:
    return http_service(settings, "scorer", [sys.executable, "-m", "model.score"], settings.scorer_port,
                        after_start=lambda: first_model.start_training_job(settings))
