"""The Spark stream job (Kafka to Delta); once it is up, the first model's history goes in ahead of live data."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack import first_model
from stack.services import Service, http_service


def service(settings: Settings) -> Service:
    return http_service(settings, "stream", [sys.executable, "-m", "spark.stream_job"],
                        settings.stream_port, after_start=lambda: first_model.backfill_if_needed(settings),
                        # A JVM, Spark's session and its first Kafka and Delta contact: about 20 s idle,
                        # over 60 s on two loaded cores; on the cluster, each worker first starts an
                        # executor JVM that fetches the job's jars (about 100 s under load).
                        start_timeout=(4 if settings.profile == "cluster" else 2) * settings.start_timeout)
