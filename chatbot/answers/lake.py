"""Runs the answers' queries on the profile's SQL engine (lakewatch.sql: DuckDB here, Trino in
compose) and times them for /metrics. The symbols the bot knows come from here too."""
from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from prometheus_client import Histogram

from lakewatch import tables
from lakewatch.settings import Settings
from lakewatch.sql import schema, sql_engine

QUERY_SECONDS = Histogram("lakewatch_chat_query_seconds", "SQL time of the bot's queries, by query", ["query"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class NoDataYet(LookupError):
    """A table the question needs has not been written yet (a fresh lake)."""


def rows(settings: Settings, name: str, query: sa.Select, needs: tuple[str, ...]) -> list[dict]:
    """The query's rows as dicts. `needs` names the tables it reads, so a lake without them yet
    gets a plain answer instead of a missing-table error (on both engines: Trino registers a table
    once the lake has it)."""
    missing = set(needs) - set(tables.in_lake(settings.lake_dir))
    if missing:
        raise NoDataYet(", ".join(sorted(missing)))
    with QUERY_SECONDS.labels(name).time(), sql_engine(settings).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


_cache: dict = {}
_lock = threading.Lock()
SYMBOLS_TTL_SECONDS = 300.0


def known_symbols(settings: Settings) -> tuple[str, ...]:
    """The configured symbols and every symbol with bars in the lake (cached for five minutes)."""
    with _lock:
        cached = _cache.get(settings)
        if cached and time.monotonic() - cached[0] < SYMBOLS_TTL_SECONDS:
            return cached[1]
    stored: list[str] = []
    try:
        stored = [r["symbol"] for r in rows(settings, "known_symbols",
                                            sa.select(schema.bars_1m.c.symbol).distinct(), ("bars_1m",))]
    except NoDataYet:
        pass
    symbols = tuple(dict.fromkeys([*settings.symbols, *sorted(stored)]))
    with _lock:
        _cache[settings] = (time.monotonic(), symbols)
    return symbols
