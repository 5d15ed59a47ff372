"""The stack runner (stack/): what `make up` may install, how long it waits for a service
to start and to stop, and where its supervisor (stack/supervisor.py) serves /health and /metrics.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runner:
    auto_install: bool = True  # make up/test install missing Debian packages as root (stack/prerequisites.py)
    start_timeout: float = 60.0
    stop_timeout: float = 15.0  # SIGTERM, then SIGKILL after this
    supervisor_port: int = 9104  # the supervisor's /health and /metrics (restarts, crash loops)
