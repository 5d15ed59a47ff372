"""Keeps the Delta tables fast to read: compaction, vacuum and log checkpoints on a schedule.

Every micro-batch (and every scorer cycle) adds a small file and a log entry, so without
maintenance readers slow down as files pile up (docs/benchmarks.md#sql-surface-issue-4). Each
writer maintains its own tables between its writes, in the same thread (so maintenance never
races a write), one table per run so a run never stalls it for long: the stream job its
tables, the scorer `anomalies`. One engine maintains every table, delta-rs, whichever engine
writes it (delta-spark for the stream's tables): the scorer has no Spark, and one engine
means one set of compaction and retention rules (docs/architecture.md).
"""
from __future__ import annotations

import itertools
import logging
import time

from deltalake import DeltaTable
from prometheus_client import Histogram

from lakewatch.logs import event

log = logging.getLogger("lakewatch.maintenance")
SECONDS = Histogram(
    "lakewatch_table_maintenance_seconds", "Duration of table maintenance runs (compaction, vacuum, checkpoint).",
    ["table"], buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300),
)


def maintain(table: DeltaTable, name: str, retention_hours: float) -> dict:
    """Compact small files, vacuum files no snapshot within the retention needs, checkpoint the log."""
    started = time.monotonic()
    compacted = table.optimize.compact()
    # Readers hold a snapshot for seconds, not hours: the retention is far above any query.
    vacuumed = table.vacuum(retention_hours=int(retention_hours), enforce_retention_duration=False, dry_run=False)
    table.create_checkpoint()
    table.cleanup_metadata()
    seconds = time.monotonic() - started
    SECONDS.labels(name).observe(seconds)
    summary = {"table": name, "files_added": compacted.get("numFilesAdded", 0),
               "files_removed": compacted.get("numFilesRemoved", 0), "vacuumed": len(vacuumed),
               "version": table.version(), "seconds": round(seconds, 2)}
    event(log, "table maintained", **summary)
    return summary


class Schedule:
    """Says when maintenance is due and on which table, round robin."""

    def __init__(self, tables: dict[str, str], every_minutes: float, retention_hours: float):
        self.tables = tables  # name -> path
        self.every_s = every_minutes * 60
        self.retention_hours = retention_hours
        self._names = itertools.cycle(sorted(tables))
        self._next_at = time.monotonic() + self.every_s / max(1, len(tables))

    def due(self) -> bool:
        return time.monotonic() >= self._next_at

    def run_if_due(self) -> dict | None:
        if not self.due():
            return None
        # Spread the tables over the period: each is maintained once per `every_minutes`.
        self._next_at = time.monotonic() + self.every_s / max(1, len(self.tables))
        name = next(self._names)
        # Opened afresh: another engine (delta-spark) may have committed since the last run.
        return maintain(DeltaTable(self.tables[name]), name, self.retention_hours)
