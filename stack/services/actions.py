"""The chatbot's custom actions (rasa-sdk), in their own venv."""
from __future__ import annotations

from lakewatch.settings import Settings
from stack.bootstrap import ensure_venv
from stack.services import Service, http_service, venv_python


def prepare(settings: Settings) -> dict[str, str]:
    ensure_venv("actions")
    return {}


def service(settings: Settings) -> Service:
    # lakewatch is installed in the actions venv without its dependencies (stack/bootstrap.py).
    return http_service(settings, "actions", [str(venv_python(settings, "actions")), "-m", "chatbot.action_server"],
                        settings.actions_port, prepare=lambda: prepare(settings), lake_read_only=True)
