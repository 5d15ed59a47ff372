"""Keeps the Delta tables fast to read: compaction, vacuum and log checkpoints on a schedule.

Every micro-batch adds a small file per table and a log entry, so without maintenance readers
slow down as files pile up. The job runs maintenance between micro-batches, in the same thread
as its writes (delta-rs would otherwise see two writers racing on the bars merge), and one
table per run so a run never stalls the stream for long.
"""
from __future__ import annotations

import itertools
import logging
import time

from deltalake import DeltaTable

import stream_metrics as metrics
from lakewatch.logs import event

log = logging.getLogger("spark.maintenance")


def maintain(table: DeltaTable, name: str, retention_hours: float) -> dict:
    """Compact small files, vacuum files no snapshot within the retention needs, checkpoint the log."""
    started = time.monotonic()
    compacted = table.optimize.compact()
    # Readers hold a snapshot for seconds, not hours: the retention is far above any query.
    vacuumed = table.vacuum(retention_hours=int(retention_hours), enforce_retention_duration=False, dry_run=False)
    table.create_checkpoint()
    table.cleanup_metadata()
    seconds = time.monotonic() - started
    metrics.MAINTENANCE_SECONDS.labels(name).observe(seconds)
    summary = {"table": name, "files_added": compacted.get("numFilesAdded", 0),
               "files_removed": compacted.get("numFilesRemoved", 0), "vacuumed": len(vacuumed),
               "version": table.version(), "seconds": round(seconds, 2)}
    event(log, "table maintained", **summary)
    return summary


class Schedule:
    """Says when maintenance is due and on which table, round robin."""

    def __init__(self, tables: dict[str, DeltaTable], every_minutes: float, retention_hours: float):
        self.tables = tables
        self.every_s = every_minutes * 60
        self.retention_hours = retention_hours
        self._names = itertools.cycle(sorted(tables))
        self._next_at = time.monotonic() + self.every_s / max(1, len(tables))

    def run_if_due(self) -> dict | None:
        if time.monotonic() < self._next_at:
            return None
        # Spread the tables over the period: each is maintained once per `every_minutes`.
        self._next_at = time.monotonic() + self.every_s / max(1, len(self.tables))
        name = next(self._names)
        return maintain(self.tables[name], name, self.retention_hours)
