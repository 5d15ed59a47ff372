"""The Delta lake: where the tables live and how they are kept. The stream job and the scorer
write it, every SQL reader reads it; maintenance (lakewatch/maintenance.py) runs in the writers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lake:
    maintenance_minutes: float = 10.0  # compaction, vacuum and Delta checkpoints, one table per run
    vacuum_retention_hours: float = 24.0

    @property
    def lake_dir(self) -> Path:
        return self.state_dir / "lake"
