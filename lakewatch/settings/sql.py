"""The SQL surface (lakewatch/sql/): DuckDB over the lake on the embedded profile, Trino when
distributed. Every reader (Superset, the bot's actions, the scorer) goes through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sql:
    day_timezone: str = "UTC"  # the zone of "today": SQL sessions run in it
    duckdb_memory_limit: str = "2GB"  # per connection; every reader process has its own
    duckdb_threads: int = 2
    trino_host: str = ""  # default: host
    trino_port: int = 8080  # compose's Trino
    trino_user: str = "lakewatch"
    trino_catalog: str = "delta"

    @property
    def sql_backend(self) -> str:
        return "duckdb" if self.profile == "embedded" else "trino"

    @property
    def trino_url(self) -> str:
        return f"trino://{self.trino_user}@{self.trino_host or self.host}:{self.trino_port}/{self.trino_catalog}/market"

    @property
    def duckdb_extension_dir(self) -> Path:
        return self.state_dir / "duckdb" / "extensions"
