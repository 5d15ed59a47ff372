"""The ingestion service: the market simulator, or Finnhub with FINNHUB_API_KEY."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service, http_service


def service(settings: Settings) -> Service:
    return http_service(settings, "ingestion", [sys.executable, "-m", "ingestion.service"], settings.ingestion_port)
