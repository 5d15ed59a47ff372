"""Prometheus' statsd_exporter: Airflow speaks StatsD, Prometheus scrapes /metrics, and this turns
the one into the other (monitoring/statsd-mapping.yml names and labels Airflow's metrics).

Debian 12 has no package of it, so the first `make up` builds the pinned release from the Go
module proxy (about 25 s, once) into the venvs' folder (tools/); a later start finds it there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lakewatch.service_http import healthy
from lakewatch.settings import REPO_ROOT, Settings
from stack import prerequisites
from stack.services import NAME_WIDTH, Service

MODULE = "github.com/prometheus/statsd_exporter"
VERSION = "v0.31.0"
MAPPING = REPO_ROOT / "monitoring" / "statsd-mapping.yml"


def binary(settings: Settings) -> Path:
    """Beside the venvs and jars: built from a pin like them, and shared by tests' state folders."""
    return settings.venv_dir / "tools" / f"statsd_exporter-{VERSION}" / "statsd_exporter"


def build(settings: Settings, say=print) -> Path:
    """The pinned statsd_exporter, built once with `go install` (Go >= 1.25, the prerequisite)."""
    built = binary(settings)
    if built.exists():
        return built
    needed = prerequisites.missing(["go"])
    if needed:
        raise RuntimeError(prerequisites.advice("the StatsD exporter", needed))
    say(f"  {'statsd':<{NAME_WIDTH}} building {MODULE}@{VERSION} with Go (once) ...")
    log_path = settings.log_dir / "statsd-build.log"
    with open(log_path, "wb") as log:
        done = subprocess.run([prerequisites.go_binary(), "install", f"{MODULE}@{VERSION}"], stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GOBIN": str(built.parent), "GOFLAGS": "-mod=mod"})
    if done.returncode != 0:
        shutil.rmtree(built.parent, ignore_errors=True)
        raise RuntimeError(f"building statsd_exporter failed (is the Go module proxy reachable?); see {log_path}")
    return built


def prepare(settings: Settings) -> dict[str, str]:
    build(settings)
    return {}


def command(settings: Settings) -> list[str]:
    listen = f"{settings.host}:{settings.statsd_port}"
    return [str(binary(settings)), f"--statsd.listen-udp={listen}", f"--statsd.listen-tcp={listen}",
            f"--web.listen-address={settings.host}:{settings.statsd_metrics_port}",
            f"--statsd.mapping-config={MAPPING}", "--log.format=json"]


def service(settings: Settings) -> Service:
    return Service(name="statsd", command=command(settings), port=settings.statsd_metrics_port,
                   url=settings.url(settings.statsd_metrics_port, "/metrics"),
                   health=lambda: healthy(settings.url(settings.statsd_metrics_port, "/-/healthy")),
                   prepare=lambda: prepare(settings))
