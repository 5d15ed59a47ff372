"""Keeps Trino's `delta.market` in step with the lake (lakewatch/sql/trino_lake.py): it registers
every Delta table and creates the views once Trino is up, then looks again every few seconds,
since the stream job and the scorer create their tables after the stack starts."""
from __future__ import annotations

import sys

from lakewatch.settings import Settings
from stack.services import Service, http_service


def service(settings: Settings) -> Service | None:
    if settings.sql_engine != "trino":
        return None
    return http_service(settings, "trino-sync", [sys.executable, "-m", "lakewatch.sql.trino_lake", "--watch"],
                        settings.trino_sync_port)
