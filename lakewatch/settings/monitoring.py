"""Monitoring (monitoring/): Prometheus, which scrapes every service's /metrics, and compose's
Grafana.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Monitoring:
    prometheus_port: int = 9090
    grafana_port: int = 3000  # compose's
