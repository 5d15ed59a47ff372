"""Distributed SQL: every Delta table of the lake registered in Trino (catalog `delta`, schema
`market`) with the curated views, so Trino answers with the same names as the embedded DuckDB
(duckdb_lake.py is its embedded twin).

    python -m lakewatch.sql.trino_lake [--watch]

Idempotent: a table already registered is left alone, the schema is created only if missing
and views are created or replaced. With --watch it runs again every LAKEWATCH_TRINO_SYNC_SECONDS
and serves /health and /metrics on LAKEWATCH_TRINO_SYNC_PORT, so a table the lake gains later
(the scorer's first write, a user's own table) shows up in Trino too.
It runs as the `trino-sync` service in `make up` (stack/services/trino_sync.py) and in compose
(trino/Dockerfile), as Trino's admin user: readers may only SELECT (trino/etc/rules.json).
Settings come from LAKEWATCH_* as everywhere.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from lakewatch import logs, tables
from lakewatch import settings as settings_module
from lakewatch.sql import schema, views


def plan(lake_tables: tuple[str, ...], registered: set[str], location_root: str) -> list[str]:
    """The statements that bring Trino from `registered` to the lake's tables and views.

    A registered table the lake no longer has (a lake deleted and started again) is
    unregistered, so Trino never answers from a folder that is gone.
    """
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema.SCHEMA}"]
    for name in sorted(registered - set(lake_tables)):
        statements.append(f"CALL system.unregister_table(schema_name => '{schema.SCHEMA}', table_name => '{name}')")
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


def wait_until_scans_run(connection, table: str, timeout: float = 60.0) -> None:
    """Wait until Trino can scan `table`.

    Trino says it has started before its node manager knows that the coordinator serves the
    `delta` catalog: the list is polled every 5 s. Until then metadata queries work and every
    scan fails with NO_NODES_AVAILABLE (trinodb/trino#2214; testcontainers-python#735 sleeps).
    A pass that ends here leaves Trino answering the lake, not only knowing it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.exec_driver_sql(f"SELECT 1 FROM {schema.SCHEMA}.{table} LIMIT 1").all()
            return
        except Exception as exc:
            if "NO_NODES_AVAILABLE" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def sync(engine, lake_dir: Path, location_root: str, log: logging.Logger) -> int:
    """One pass, ending when a scan of the lake runs; returns how many tables it registered."""
    lake_tables = tables.in_lake(lake_dir)
    with engine.connect() as connection:
        statements = plan(lake_tables, registered_tables(connection), location_root)
        for statement in statements:
            connection.exec_driver_sql(statement)
        if probe := next((t.name for t in tables.ALL_TABLES if t.name in lake_tables), None):
            wait_until_scans_run(connection, probe)
    added = sum(s.startswith("CALL system.register") for s in statements)
    logs.event(log, "trino_sync", tables=len(lake_tables), registered=added,
               unregistered=sum(s.startswith("CALL system.unregister") for s in statements))
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--location-root", default="local:///lake",
                        help="the lake folder as Trino sees it (default local:///lake, see delta.properties)")
    parser.add_argument("--watch", action="store_true",
                        help="run again every LAKEWATCH_TRINO_SYNC_SECONDS, with /health and /metrics")
    args = parser.parse_args(argv)
    s = settings_module.load()
    if s.sql_engine != "trino":
        print("trino_lake: LAKEWATCH_SQL_ENGINE is duckdb, which needs no registration", file=sys.stderr)
        return 2
    log = logs.setup("trino-sync")
    from lakewatch.sql.engine import trino_engine

    engine = trino_engine(s, s.trino_admin_user)
    if not args.watch:
        sync(engine, s.lake_dir, args.location_root, log)
        return 0
    return watch(engine, s, args.location_root, log)


def watch(engine, s, location_root: str, log: logging.Logger) -> int:
    """Sync every trino_sync_seconds until SIGTERM; healthy while the last pass is recent and worked."""
    from prometheus_client import Counter, Gauge

    from lakewatch import service_http

    passes = Counter("lakewatch_trino_sync_passes", "Registration passes, by outcome", ["outcome"])
    last_ok = Gauge("lakewatch_trino_sync_last_success_timestamp_seconds", "When a pass last worked")
    registered = Counter("lakewatch_trino_sync_tables_registered", "Tables registered in Trino since start")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    state = {"ok_at": 0.0, "error": ""}

    def health() -> tuple[bool, dict]:
        age = time.time() - state["ok_at"]
        return age <= 3 * s.trino_sync_seconds + 30, {"last_success_age_s": round(age, 1), "error": state["error"]}

    server = service_http.serve(s.host, s.trino_sync_port, health)
    while not stop.is_set():
        try:
            registered.inc(sync(engine, s.lake_dir, location_root, log))
            state.update(ok_at=time.time(), error="")
            last_ok.set_to_current_time()
            passes.labels("ok").inc()
        except Exception as exc:  # Trino restarting: say so, try again next period
            state["error"] = str(exc).splitlines()[0][:300]
            passes.labels("error").inc()
            logs.event(log, "trino_sync_failed", level=logging.WARNING, error=state["error"])
        stop.wait(s.trino_sync_seconds)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
