"""Runs the answers' queries on the profile's SQL engine (lakewatch.sql: DuckDB here, Trino in
compose), times them for /metrics, and keeps what ran so the bot can show its SQL. The symbols
the bot knows come from here too.

Results are kept, keyed by the SQL (values filled in) and the versions of the Delta tables it
reads (lakewatch.table_versions): the same question on an unchanged lake is answered without
the engine, and any commit to a table a query reads makes its next answer a fresh query. On two
cores, Trino plans and runs about 12 small queries a second; twenty users asking what a
dashboard shows would otherwise queue behind it (docs/benchmarks.md, issue 23)."""
from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Iterator

import sqlalchemy as sa
from prometheus_client import Counter, Histogram
from sqlalchemy.sql.util import find_tables

from lakewatch import table_versions, tables
from lakewatch.settings import Settings
from lakewatch.sql import sql_engine
from lakewatch.sql.saved_queries import filled_in

QUERY_SECONDS = Histogram("lakewatch_chat_query_seconds", "SQL time of the bot's queries, by query", ["query"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

CACHED = Counter("lakewatch_chat_query_cache_total", "The bot's queries by whether a kept result answered them "
                 "(hit) or the engine ran them (miss: new SQL, a table with a new commit, or one not cacheable)",
                 ["result"])
CACHE_SIZE = 512  # results of a few rows each
LAKE_TABLES = frozenset(table.name for table in tables.ALL_TABLES)

_ran: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("lakewatch_bot_sql", default=None)


class NoDataYet(LookupError):
    """A table the question needs has not been written yet (a fresh lake)."""


def rows(settings: Settings, name: str, query: sa.Select) -> list[dict]:
    """The query's rows as dicts. A lake table it reads with no commit yet (a fresh lake) raises
    NoDataYet, for a plain answer instead of a missing-table error (on both engines: Trino
    registers a table once the lake has it)."""
    versions = _versions(settings, query)
    missing = sorted(table for table, found in versions.items() if found is None and table in LAKE_TABLES)
    if missing:
        raise NoDataYet(", ".join(missing))
    sql = filled_in(query, settings.sql_engine)
    ran = _ran.get()
    if ran is not None:
        ran.append(sql)
    key = _cache_key(settings, sql, versions)

    def run() -> list[dict]:
        with QUERY_SECONDS.labels(name).time(), sql_engine(settings).connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    if key is None:
        CACHED.labels("miss").inc()
        return run()
    found, hit = _results.get_or_run(key, lambda: tuple(run()))
    CACHED.labels("hit" if hit else "miss").inc()
    return [dict(row) for row in found]


class _Results:
    """The newest CACHE_SIZE results, shared by the action server's worker threads. A query
    already running for the same key is waited for, not run again: when a new bar begins, every
    window's SQL changes at once, and twenty users asking the same question would otherwise send
    Trino twenty copies of it."""

    def __init__(self, size: int):
        self.size, self._kept, self._running, self._lock = size, OrderedDict(), {}, threading.Lock()

    def get_or_run(self, key, run) -> tuple[tuple, bool]:
        """(the result, whether it came without running the query here)."""
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key], True
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = Future()
                mine = True
            else:
                mine = False
        if not mine:
            return running.result(), True  # the first asker's error, if its query failed
        try:
            found = run()
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            running.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            self._kept[key] = found
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        running.set_result(found)
        return found, False


_results = _Results(CACHE_SIZE)


def _versions(settings: Settings, query: sa.Select) -> dict[str, tuple | None]:
    """The newest version of each table the query names (table_versions.version), None for one
    with no commit in the lake: a lake table not written yet, or a view."""
    return {table: table_versions.version(settings.lake_dir / table)
            for table in sorted({t.name for t in find_tables(query)})}


def _cache_key(settings: Settings, sql: str, versions: dict[str, tuple | None]) -> tuple | None:
    """The SQL and the version of every table it reads; None when a source has no version (a
    view: the tables under it are not named here) or the SQL reads the clock, as a result then
    depends on more than the lake."""
    if "current_" in sql.lower() or "now()" in sql.lower() or None in versions.values():
        return None
    return settings.sql_engine, str(settings.lake_dir), sql, tuple(versions.items())


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collects the SQL, values filled in, of every query run inside (in this thread)."""
    token = _ran.set([])
    try:
        yield _ran.get()
    finally:
        _ran.reset(token)


def known_symbols(settings: Settings) -> tuple[str, ...]:
    """The configured symbols: the only ones the bot names or lists, whatever else reached the lake."""
    return tuple(settings.symbols)


def warm_up(settings: Settings) -> None:
    """Opens the engine's first connection (DuckDB prepares its views, ~0.5 s) before a user waits on it."""
    with sql_engine(settings).connect() as connection:
        connection.execute(sa.text("SELECT 1"))
