"""Embedded SQL: every Delta table under the lake folder as a view in DuckDB schema `market`.

Each connection is an in-memory DuckDB with the delta extension (from PyPI, never downloaded),
so no reader holds a file lock and any number of processes read while the stream writes.
`delta_scan` reads the table's latest Delta snapshot when a query starts, so every query sees
one committed version of each table. Views are built from whatever Delta folders exist when a
connection is made or checked out of a pool, so a table created later appears without a restart.

Every connection that serves users (Superset, the bot's actions, `make sql`) is confined once it
is prepared (`confine`): it reads files under the lake folder and nowhere else, writes no file
outside it, attaches no database file, installs and loads no extension and changes no setting.
DuckDB's own settings do this, not a list of forbidden SQL words. They cannot tell a read in
the lake from a write there, so the services that take SQL from users also see the lake through
a read-only mount (docs/sql.md, "What SQL users can do").
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import duckdb

from lakewatch import tables
from lakewatch.sql import schema, views


def connect_config(settings) -> dict:
    """duckdb.connect() config: extensions only from the local folder, bounded memory."""
    return {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "extension_directory": str(settings.duckdb_extension_dir),
            "memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads}


def load_delta(con) -> None:
    try:
        con.execute("LOAD delta")
    except duckdb.Error:  # first use of this extension folder: install from the PyPI package
        import duckdb_extension_delta

        package = Path(duckdb_extension_delta.__file__).parent
        binary = package / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"
        if not binary.exists():
            raise RuntimeError(f"the delta extension for DuckDB {duckdb.__version__} is missing: "
                               f"install duckdb-extension-delta=={duckdb.__version__}") from None
        con.execute(f"INSTALL '{binary}'")
        con.execute("LOAD delta")


def prepare(con, lake_dir: Path, timezone: str) -> tuple[str, ...]:
    """Make `con` ready and confined: delta loaded, `market` views for the lake's tables, the
    zone of "today" set for it and every cursor made from it."""
    load_delta(con)
    names = refresh_views(con, lake_dir)
    confine(con, lake_dir, timezone)
    return names


def confine(con, lake_dir: Path, timezone: str) -> None:
    """From here on `con` and its cursors read files under lake_dir only and change nothing of
    their configuration; views made later (refresh_views) still work, since they only read."""
    con.execute(f"SET GLOBAL TimeZone = '{_quote(timezone)}'")
    con.execute(f"SET allowed_directories = ['{_quote(str(lake_dir.resolve()))}/']")
    con.execute("SET enable_external_access = false")  # files elsewhere, ATTACH, INSTALL and LOAD
    con.execute("SET lock_configuration = true")  # last: no SET undoes the above


def shared(settings) -> Callable[[], "duckdb.DuckDBPyConnection"]:
    """A connect function over one prepared in-memory database: each call returns a new
    connection to it (a DuckDB cursor, safe to use from its own thread), with the views
    refreshed first when the lake's table set changed. For hosts that build an engine per
    query (Superset), where preparing a fresh database every time would cost about 0.3 s."""
    lock = threading.Lock()
    state: dict = {}

    def connect():
        with lock:
            if "base" not in state:
                base = duckdb.connect(":memory:", config=connect_config(settings))
                state["tables"] = prepare(base, settings.lake_dir, settings.day_timezone)
                state["base"] = base
            elif tables.in_lake(settings.lake_dir) != state["tables"]:
                state["tables"] = refresh_views(state["base"], settings.lake_dir)
            return state["base"].cursor()  # with the base's zone, set before it was confined

    return connect


def refresh_views(con, lake_dir: Path) -> tuple[str, ...]:
    """(Re)create a view per Delta table, then every curated view whose tables all exist."""
    names = tables.in_lake(lake_dir)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema.SCHEMA}")
    for name in names:
        location = _quote(str((lake_dir / name).resolve()))
        con.execute(f"CREATE OR REPLACE VIEW {schema.SCHEMA}.{name} AS SELECT * FROM delta_scan('{location}')")
    for view in views.VIEWS:
        if set(view.tables) <= set(names):
            con.execute(views.create_sql(view, "duckdb"))
    return names


def _quote(text: str) -> str:
    return text.replace("'", "''")
