"""Monitoring (monitoring/): Prometheus, which scrapes every service's /metrics, the StatsD
exporter, and compose's Grafana.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Monitoring:
    prometheus_port: int = 9090
    grafana_port: int = 3000  # compose's
    # Prometheus' statsd_exporter, for the services that speak StatsD (Airflow): it takes
    # StatsD on statsd_port (UDP) and serves /metrics on statsd_metrics_port.
    statsd_port: int = 9125
    statsd_metrics_port: int = 9107
