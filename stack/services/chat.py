"""The chat page Superset's button opens, talking to Rasa."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service, http_service


def service(settings: Settings) -> Service:
    return http_service(settings, "chat", [sys.executable, "-m", "chatbot.chat_page"], settings.chat_port, "/")
