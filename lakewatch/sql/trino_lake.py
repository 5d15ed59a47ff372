"""Distributed SQL: every Delta table of the lake registered in Trino (catalog `delta`, schema
`market`) with the curated views, so Trino answers with the same names as the embedded DuckDB
(duckdb_lake.py is its embedded twin).

    python -m lakewatch.sql.trino_lake [--watch SECONDS]

Idempotent: a table already registered is left alone, the schema is created only if missing
and views are created or replaced. With --watch it runs again every N seconds, so a table
the lake gains later (the scorer's first write, a user's own table) shows up in Trino too.
Run in compose by the `trino-init` service (trino/Dockerfile); settings come from LAKEWATCH_*
as everywhere.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from lakewatch import logs, tables
from lakewatch import settings as settings_module
from lakewatch.sql import schema, views


def plan(lake_tables: tuple[str, ...], registered: set[str], location_root: str) -> list[str]:
    """The statements that bring Trino from `registered` to the lake's tables and views."""
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema.SCHEMA}"]
    for name in lake_tables:
        if name not in registered:
            statements.append(
                f"CALL system.register_table(schema_name => '{schema.SCHEMA}', table_name => '{name}', "
                f"table_location => '{location_root.rstrip('/')}/{name}')")
    for view in views.VIEWS:
        if set(view.tables) <= set(lake_tables):
            statements.append(views.create_sql(view, "trino"))
    return statements


def registered_tables(connection) -> set[str]:
    rows = connection.exec_driver_sql(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = '{schema.SCHEMA}' AND table_type = 'BASE TABLE'")
    return {row[0] for row in rows}


def sync(engine, lake_dir: Path, location_root: str, log: logging.Logger) -> int:
    """One pass; returns how many tables it registered."""
    lake_tables = tables.in_lake(lake_dir)
    with engine.connect() as connection:
        statements = plan(lake_tables, registered_tables(connection), location_root)
        for statement in statements:
            connection.exec_driver_sql(statement)
    added = sum(s.startswith("CALL") for s in statements)
    logs.event(log, "trino_sync", tables=len(lake_tables), registered=added, views=len(statements) - 1 - added)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--location-root", default="local:///lake",
                        help="the lake folder as Trino sees it (default local:///lake, see delta.properties)")
    parser.add_argument("--watch", type=float, default=0, help="run again every this many seconds")
    args = parser.parse_args(argv)
    s = settings_module.load()
    if s.sql_backend != "trino":
        print("trino_lake: LAKEWATCH_PROFILE=distributed is needed (Trino is the distributed profile's engine)",
              file=sys.stderr)
        return 2
    log = logs.setup("trino-init")
    from lakewatch.sql import sql_engine

    engine = sql_engine(s)
    while True:
        sync(engine, s.lake_dir, args.location_root, log)
        if not args.watch:
            return 0
        time.sleep(args.watch)


if __name__ == "__main__":
    sys.exit(main())
