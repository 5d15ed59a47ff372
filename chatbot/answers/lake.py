"""Runs the answers' queries on the profile's SQL engine (lakewatch.sql: DuckDB here, Trino in
compose), times them for /metrics, and keeps what ran so the bot can show its SQL. The symbols
the bot knows come from here too."""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import sqlalchemy as sa
from prometheus_client import Histogram

from lakewatch import tables
from lakewatch.settings import Settings
from lakewatch.sql import sql_engine
from lakewatch.sql.saved_queries import filled_in

QUERY_SECONDS = Histogram("lakewatch_chat_query_seconds", "SQL time of the bot's queries, by query", ["query"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

_ran: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("lakewatch_bot_sql", default=None)


class NoDataYet(LookupError):
    """A table the question needs has not been written yet (a fresh lake)."""


def rows(settings: Settings, name: str, query: sa.Select, needs: tuple[str, ...]) -> list[dict]:
    """The query's rows as dicts. `needs` names the tables it reads, so a lake without them yet
    gets a plain answer instead of a missing-table error (on both engines: Trino registers a table
    once the lake has it)."""
    missing = set(needs) - set(tables.in_lake(settings.lake_dir))
    if missing:
        raise NoDataYet(", ".join(sorted(missing)))
    ran = _ran.get()
    if ran is not None:
        ran.append(filled_in(query, settings.sql_engine))
    with QUERY_SECONDS.labels(name).time(), sql_engine(settings).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


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
