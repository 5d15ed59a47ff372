"""Rasa, in its own Python 3.10 venv, serving a model trained on the current training data."""
from __future__ import annotations

from chatbot.training import RASA_ENV, ensure_trained
from lakewatch.settings import Settings
from stack.bootstrap import ensure_venv
from stack.services import Service, http_service, venv_python


def prepare(settings: Settings, say=print) -> dict[str, str]:
    """Rasa's venv (built once), then a trained model for the current training data (only
    after an edit of chatbot/config.yml, domain.yml or data/)."""
    ensure_venv("rasa")
    ensure_trained(settings, say)
    return RASA_ENV


def service(settings: Settings) -> Service:
    # As a module from the repo root (the runner's working directory): the rasa venv is Python 3.10,
    # below lakewatch's requires-python, so the repo is not installed there.
    return http_service(settings, "rasa", [str(venv_python(settings, "rasa")), "-m", "chatbot.rasa_server"],
                        settings.rasa_port, "/webhooks/rest/webhook", prepare=lambda: prepare(settings),
                        start_timeout=3 * settings.start_timeout)  # TensorFlow's import alone takes ~10 s
