"""Prometheus (Debian's binary): its config generated from the stack's scrape jobs."""
from __future__ import annotations

from lakewatch.service_http import healthy
from lakewatch.settings import Settings
from monitoring import prometheus
from stack import prerequisites
from stack.services import Service


def prepare(settings: Settings) -> dict[str, str]:
    # `make up` checked these before building anything; this is for a stack started otherwise.
    needed = prerequisites.missing(["prometheus", "Prometheus's console libraries"])
    if needed:
        raise RuntimeError(prerequisites.advice("the stack", needed))
    prometheus.write_config(settings)
    return {}


def service(settings: Settings) -> Service:
    return Service(name="prometheus", command=prometheus.command(settings), port=settings.prometheus_port,
                   url=prometheus.console_url(settings),
                   health=lambda: healthy(settings.url(settings.prometheus_port, "/-/ready")),
                   prepare=lambda: prepare(settings))
