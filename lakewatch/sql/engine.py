"""`sql_engine()`: the SQLAlchemy engine for the configured SQL engine, Trino or DuckDB.

Callers never ask which engine they got: the names (schema `market`, its tables and views)
and the answers are the same on both. Users' SQL runs on `settings.sql_engine`; in-process
work that must not wait for a server (training, scoring) asks for "duckdb" by name.
"""
from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy import event

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.sql import duckdb_lake


def sql_engine(settings=None, engine: str | None = None) -> sa.Engine:
    """engine: "trino" or "duckdb"; default the settings' `sql_engine`."""
    settings = settings or settings_module.load()
    return _engine(settings, engine or settings.sql_engine)


@functools.lru_cache(maxsize=8)
def _engine(settings, engine: str) -> sa.Engine:
    if engine == "trino":
        return trino_engine(settings, settings.trino_user)
    return _duckdb_engine(settings)


def trino_engine(settings, user: str) -> sa.Engine:
    return sa.create_engine(settings.trino_url_for(user), connect_args={"timezone": settings.day_timezone})


def _duckdb_engine(settings) -> sa.Engine:
    settings.duckdb_extension_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine("duckdb:///:memory:", connect_args={"config": duckdb_lake.connect_config(settings)},
                              poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=4)

    @event.listens_for(engine, "connect")
    def _prepare(dbapi_connection, record):
        record.info["lake_tables"] = duckdb_lake.prepare(dbapi_connection, settings.lake_dir, settings.day_timezone)

    @event.listens_for(engine, "checkout")
    def _follow_new_tables(dbapi_connection, record, proxy):
        if tables.in_lake(settings.lake_dir) != record.info.get("lake_tables"):
            record.info["lake_tables"] = duckdb_lake.refresh_views(dbapi_connection, settings.lake_dir)

    return engine
