"""The SQL surface (lakewatch/sql/): Trino over the lake by default, DuckDB as the light option
(LAKEWATCH_SQL_ENGINE=duckdb) and for in-process work. Every reader (Superset, the bot's
actions, the scorer) goes through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sql:
    day_timezone: str = "UTC"  # the zone of "today": SQL sessions run in it
    duckdb_memory_limit: str = "2GB"  # per connection; every reader process has its own
    duckdb_threads: int = 2
    # What users' SQL runs on (Superset, SQL Lab, the bot): "trino", or "duckdb" for a lighter
    # stack without Trino. In-process work (training, scoring) always reads with DuckDB.
    sql_engine: str = "trino"
    trino_host: str = ""  # default: host
    trino_port: int = 8080
    trino_sync_port: int = 9106  # the table registration's metrics and health
    trino_sync_seconds: float = 10.0  # how often it looks for tables the lake gained
    trino_user: str = "lakewatch"  # readers: SELECT only (trino/etc/rules.json)
    trino_admin_user: str = "lakewatch_admin"  # registers tables and creates the views
    trino_catalog: str = "delta"
    trino_heap: str = "2G"
    trino_java_home: Path = Path("/usr/lib/jvm/temurin-25-jdk-amd64")  # Trino 476 needs Java 24+

    def trino_url_for(self, user: str) -> str:
        return f"trino://{user}@{self.trino_host or self.host}:{self.trino_port}/{self.trino_catalog}/market"

    @property
    def trino_java(self) -> Path:
        return self.trino_java_home / "bin" / "java"

    @property
    def trino_url(self) -> str:
        return self.trino_url_for(self.trino_user)

    @property
    def duckdb_extension_dir(self) -> Path:
        return self.state_dir / "duckdb" / "extensions"
