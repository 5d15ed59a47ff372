"""What a SQL user can do through `lakewatch.sql.sql_engine()`, run as the bot's action server
and `make sql` run it (DuckDB confined, the lake mounted read-only: stack/sandbox.py): read the
lake, and nothing else on the server. Every hostile statement fails with an error and leaves
no file behind, and the lake still answers afterwards on the same connection."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.sql import sql_engine
from stack.sandbox import read_only_lake
from testkit import hostile_sql
from testkit.known_lake import anomaly, write

pytestmark = pytest.mark.integration

# Runs each statement on one sql_engine() connection; prints {statement: error or null} and the
# lake's answer afterwards.
BATTERY = """
import json, sys
from pathlib import Path
import sqlalchemy as sa
from lakewatch.sql import sql_engine
from testkit import hostile_sql
from lakewatch import settings

s = settings.load()
errors = {}
with sql_engine(s).connect() as con:
    for family, sql in hostile_sql.statements(Path(sys.argv[1]), s.lake_dir):
        try:
            con.exec_driver_sql(sql).fetchall()
            errors[sql] = None
        except sa.exc.DBAPIError as exc:
            errors[sql] = str(exc.orig).splitlines()[0]
        con.rollback()
    count = con.exec_driver_sql("SELECT count(*) FROM market.anomalies").scalar()
print(json.dumps({"errors": errors, "count": count}))
"""


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LAKEWATCH_SQL_ENGINE", "duckdb")  # DuckDB's confinement; Trino's is in test_sql.py
    settings = settings_module.load()
    tables.ensure(settings.lake_dir)
    write(settings.lake_dir, tables.ANOMALIES, [anomaly("AAPL", "stocks", datetime.now(timezone.utc))])
    canary = tmp_path / "canary"
    canary.mkdir()
    return settings, canary


def test_every_hostile_statement_gets_an_error_and_writes_nothing(lake):
    settings, canary = lake
    with sql_engine(settings).connect():  # installs DuckDB's delta extension: the stack's write, not a user's
        pass
    before = hostile_sql.files_under(settings.state_dir)
    run = subprocess.run(read_only_lake(settings.lake_dir, [sys.executable, "-c", BATTERY, str(canary)]),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    accepted = [sql for sql, error in answer["errors"].items() if error is None]
    assert accepted == []
    assert answer["count"] == 1  # the lake still answers on the same connection
    assert hostile_sql.files_under(settings.state_dir) == before
    assert hostile_sql.files_under(canary) == set()


def test_the_battery_covers_every_family(tmp_path):
    families = {f for f, _ in hostile_sql.statements(tmp_path, tmp_path)}
    assert families == set(hostile_sql.FAMILIES)


def test_make_sql_reads_the_lake_but_cannot_write_into_it(lake):
    settings, _ = lake
    cli = [sys.executable, "-m", "stack.cli", "sql"]
    read = subprocess.run([*cli, "SELECT count(*) AS n FROM market.anomalies", "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == [{"n": 1}]
    planted = settings.lake_dir / "anomalies" / "_delta_log" / "99999999999999999999.json"
    write = subprocess.run([*cli, f"COPY (SELECT 1 AS x) TO '{planted}'"], capture_output=True, text=True, timeout=120)
    assert write.returncode == 1 and write.stderr.startswith("lakewatch sql: ")
    assert not planted.exists()
