"""Two tiny fake services for the supervisor's tests (tests/integration/test_supervision.py),
given to it as `python -m stack.supervisor --services testkit.fake_services:services`: one that
runs until stopped and one that exits half a second after each start (a crash loop)."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service

COMMANDS = {
    "steady": [sys.executable, "-c", "import time; time.sleep(3600)"],
    "flaky": [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(3)"],
}


def services(settings: Settings) -> list[Service]:
    # Ports of services these tests do not run: free, as the runner checks before each start.
    ports = {"steady": settings.ingestion_port, "flaky": settings.scorer_port}
    return [Service(name=name, command=command, port=ports[name], url=f"fake://{name}", health=lambda: True)
            for name, command in COMMANDS.items()]
