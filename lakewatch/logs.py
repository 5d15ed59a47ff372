"""Structured (JSON-lines) logging for every lakewatch service, with secrets scrubbed.

One line per event keeps logs greppable and machine-readable; the redaction filter makes
sure a Finnhub key that slips into a message (a URL with ?token=..., an exception text)
never reaches a log file.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

from lakewatch import settings

_TOKEN_IN_URL = re.compile(r"(token=)[^&\s'\"]+")


def redact(text: str, *secrets: str) -> str:
    """text without the given secrets or any token=... (exception texts from requests carry URLs)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _TOKEN_IN_URL.sub(r"\1***", text)


class _Redactor(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = secrets

    def scrub(self, text: str) -> str:
        return redact(text, *self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str, redactor: _Redactor):
        super().__init__()
        self.service = service
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.redactor.scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def _json_lines(handler: logging.Handler, service: str, secrets: list[str] = ()) -> logging.Handler:
    """`handler` writing `service`'s JSON lines with the settings' secrets and `secrets` scrubbed."""
    redactor = _Redactor([*settings.secret_values(), *secrets])
    handler.addFilter(redactor)
    handler.setFormatter(_JsonFormatter(service, redactor))
    return handler


def setup(service: str, level: str | None = None, secrets: list[str] = ()) -> logging.Logger:
    """Configure the root logger for a service process and return the service's logger.
    `secrets`: more values to scrub besides the settings' secrets (Finnhub's key, Superset's)."""
    handler = _json_lines(logging.StreamHandler(sys.stderr), service, secrets)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LAKEWATCH_LOG_LEVEL", "INFO"))
    # urllib3 logs full URLs (Finnhub puts the key in the query) at DEBUG.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # a line per Spark callback otherwise
    return logging.getLogger(service)


def to_file(service: str, path) -> logging.Logger:
    """A logger of `service` writing JSON lines to `path` alone, for work that runs inside a
    command (`make up`'s backfill) whose console is for the user's progress, not for a client
    library's retries."""
    handler = _json_lines(logging.FileHandler(path), service)
    logger = logging.getLogger(f"lakewatch.file.{service}")
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields) -> None:
    """Log one event with structured fields (they become top-level JSON keys)."""
    logger.log(level, msg, extra={"fields": fields})
