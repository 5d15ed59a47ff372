"""The SQL surface on real DuckDB and real Trino over the same Delta tables with known rows: the
answers are exact, and the same on both engines."""
from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlalchemy as sa
import sqlglot
from deltalake import write_deltalake

from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import periods, queries, sql_engine, views
from lakewatch.sql import trino_lake
from lakewatch.sql.engine import trino_engine
from testkit import hostile_sql
from testkit.known_lake import anomaly, bar, flagged_in, reject, write
from testkit.lake import count as lake_count
from testkit.lake import state_over
from testkit.processes import free_port, private_settings, start_trino, stop_process

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TODAY = periods.today(NOW)
LAST_BAR = TODAY.start + timedelta(hours=10)


LAST_HOUR = NOW - timedelta(minutes=20)
YESTERDAY = TODAY.start - timedelta(hours=12)
ANOMALIES = [
    *(anomaly("BINANCE:BTCUSDT", "crypto", TODAY.start + timedelta(hours=h)) for h in (1, 2, 3)),
    # the 03:00 episode's second bar: one anomaly, two flagged bars
    anomaly("BINANCE:BTCUSDT", "crypto", TODAY.start + timedelta(hours=3, minutes=1),
            episode_start=TODAY.start + timedelta(hours=3), explanation="volume 900, 30x its 60-bar median (30)"),
    *(anomaly("BINANCE:BTCUSDT", "crypto", TODAY.start + timedelta(hours=h), flagged=False) for h in (4, 5)),
    *(anomaly("BINANCE:ETHUSDT", "crypto", YESTERDAY + timedelta(hours=h)) for h in (1, 2)),
    anomaly("AAPL", "stocks", TODAY.start + timedelta(hours=1), score=0.7),
    anomaly("BINANCE:SOLUSDT", "crypto", LAST_HOUR),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """One lake of known rows for the module, and settings on free ports to reach it."""
    with pytest.MonkeyPatch.context() as mp:
        s = private_settings(mp, tmp_path_factory.mktemp("sql") / "var")
    tables.ensure(s.lake_dir)
    write(s.lake_dir, tables.BARS_1M, [
        bar("AAPL", "stocks", LAST_BAR - timedelta(days=1, minutes=30), 90.0),
        bar("AAPL", "stocks", LAST_BAR - timedelta(days=1), 100.0),  # the last bar at least 24 h before
        bar("AAPL", "stocks", LAST_BAR - timedelta(hours=23), 105.0),
        bar("AAPL", "stocks", LAST_BAR, 110.0),
        bar("BINANCE:BTCUSDT", "crypto", LAST_BAR, 50000.0),  # no bar a day before
        # bars of the 03:00 episode's two flagged verdicts and of the 04:00 unflagged one
        *(bar("BINANCE:BTCUSDT", "crypto", TODAY.start + timedelta(minutes=m), close)
          for m, close in ((180, 49_000.0), (181, 48_000.0), (240, 49_500.0))),
        bar("OANDA:EUR_USD", "forex", LAST_BAR - timedelta(hours=2), 1.1),
    ])
    write(s.lake_dir, tables.ANOMALIES, ANOMALIES)
    write(s.lake_dir, tables.REJECTS, [reject("AAPL", NOW), reject("AAPL", NOW), reject("garbage", NOW),
                                       reject("AAPL", YESTERDAY)])
    write(s.lake_dir, tables.NEWS, [
        {"id": i, "symbol": "AAPL", "headline": f"AAPL news {i}", "source": "test", "url": f"https://x/{i}",
         "published_at": NOW - timedelta(hours=i)} for i in range(3)
    ] + [{"id": 9, "symbol": "TSLA", "headline": "TSLA news", "published_at": NOW}])
    day = (TODAY.start - timedelta(days=1))
    write(s.lake_dir, tables.TRADES, [
        {"symbol": "AAPL", "asset_class": "stocks", "price": p, "volume": v, "trade_ts": day + timedelta(hours=h),
         "trade_date": day.date(), "kafka_partition": 0, "kafka_offset": h, "in_bar": True}
        for h, p, v in ((14, 10.0, 1.0), (15, 12.0, 2.0), (16, 9.0, 1.0), (17, 11.0, 1.0))])
    return s


@pytest.fixture(scope="module")
def trino(lake):
    """Trino over the module's lake, its tables registered; stopped by its PID after the module."""
    settings = dataclasses.replace(lake, sql_engine="trino")
    proc = start_trino(settings)
    try:
        yield settings
    finally:
        sql_engine(settings).dispose()
        stop_process(proc, timeout=30)


@pytest.fixture(params=["duckdb", "trino"])
def lake_settings(request, lake, monkeypatch):
    """The lake through each engine: every contract test below must pass on both."""
    settings = request.getfixturevalue("trino") if request.param == "trino" else lake
    for name in ("state_dir", "sql_engine", "trino_port"):
        monkeypatch.setenv(f"LAKEWATCH_{name.upper()}", str(getattr(settings, name)))  # for the CLI
    yield settings
    if request.param == "duckdb":
        sql_engine(settings).dispose()


def one(settings, query):
    with sql_engine(settings).connect() as connection:
        return connection.execute(query).mappings().all()


def crypto_today_expected() -> int:
    return 3 + (LAST_HOUR.date() == TODAY.start.date())


def test_anomaly_count_per_period_and_asset_class(lake_settings):
    count = lambda window, **kw: one(lake_settings, queries.anomaly_count(window, **kw))[0]["anomalies"]  # noqa: E731
    assert count(TODAY, asset_class="crypto") == crypto_today_expected()
    assert count(TODAY, asset_class="stocks") == 1
    assert count(TODAY, asset_class="forex") == 0
    assert count(periods.yesterday(NOW), asset_class="crypto") == 2 + (LAST_HOUR.date() < TODAY.start.date())
    last_hour = periods.last(NOW, 1, "hour")
    # Which of today's rows fall in the last hour depends on the time of day the tests run.
    assert count(last_hour) == flagged_in(ANOMALIES, last_hour) >= 1  # SOLUSDT's, at least
    assert count(periods.since(YESTERDAY.date(), NOW + timedelta(days=1))) == 3 + 2 + 1 + 1
    assert count(TODAY, symbol="BINANCE:BTCUSDT") == 3


def test_an_episode_of_several_flagged_bars_counts_as_one_anomaly(lake_settings):
    (row,) = one(lake_settings, queries.anomaly_count(TODAY, symbol="BINANCE:BTCUSDT"))
    assert (row["anomalies"], row["flagged_bars"]) == (3, 4)
    assert flagged_in(ANOMALIES, TODAY, symbol="BINANCE:BTCUSDT", bars=True) == 4


def test_top_anomalous_symbols_rank_by_episodes(lake_settings):
    rows = one(lake_settings, queries.top_anomalous_symbols(periods.since(YESTERDAY.date(), NOW + timedelta(days=1)), 2))
    assert [(r["symbol"], r["anomalies"], r["flagged_bars"]) for r in rows] == [
        ("BINANCE:BTCUSDT", 3, 4), ("BINANCE:ETHUSDT", 2, 2)]


def test_latest_price_compares_with_the_last_bar_a_day_before(lake_settings):
    (aapl,) = one(lake_settings, queries.latest_price("AAPL"))
    assert (aapl["price"], aapl["price_24h_ago"], aapl["change_24h"]) == (110.0, 100.0, 10.0)
    assert aapl["change_24h_pct"] == pytest.approx(10.0)
    (btc,) = one(lake_settings, queries.latest_price("BINANCE:BTCUSDT"))
    assert btc["price"] == 50000.0 and btc["price_24h_ago"] is None
    assert one(lake_settings, queries.latest_price("NOPE")) == []


def test_asset_class_summary_counts_today(lake_settings):
    rows = {r["asset_class"]: r for r in one(lake_settings, sa.text("SELECT * FROM market.asset_class_summary"))}
    assert set(rows) == {"stocks", "crypto", "forex", "unknown"}
    assert (rows["stocks"]["symbols"], rows["stocks"]["anomalies_today"], rows["stocks"]["rejects_today"]) == (1, 1, 2)
    assert rows["stocks"]["last_prices"] == "AAPL 110.0000"
    assert rows["crypto"]["anomalies_today"] == crypto_today_expected()
    assert (rows["forex"]["anomalies_today"], rows["forex"]["rejects_today"]) == (0, 0)
    assert (rows["unknown"]["symbols"], rows["unknown"]["rejects_today"]) == (0, 1)


def test_anomalies_today_view_holds_only_todays_flagged_bars_and_marks_each_episode(lake_settings):
    rows = one(lake_settings, sa.text("SELECT symbol, is_anomaly, window_start, opens_episode "
                                      "FROM market.anomalies_today"))
    assert len(rows) == crypto_today_expected() + 2  # AAPL's and the episode's second bar
    assert all(r["is_anomaly"] and r["window_start"] >= TODAY.start for r in rows)
    assert sum(r["opens_episode"] for r in rows) == crypto_today_expected() + 1


def test_the_price_marks_fall_on_the_flagged_bars_close_with_their_explanation(lake_settings):
    rows = one(lake_settings, sa.text("SELECT window_start, close, is_anomaly, anomaly_close, explanation "
                                      "FROM market.prices_with_anomalies WHERE symbol = 'BINANCE:BTCUSDT' "
                                      "ORDER BY window_start"))
    at = lambda minutes: TODAY.start + timedelta(minutes=minutes)  # noqa: E731
    assert [tuple(r.values()) for r in rows] == [
        (at(180), 49_000.0, True, 49_000.0, None),
        (at(181), 48_000.0, True, 48_000.0, "volume 900, 30x its 60-bar median (30)"),
        (at(240), 49_500.0, False, None, None),
        (LAST_BAR, 50_000.0, False, None, None)]  # no verdict yet


def test_latest_anomaly_and_news_of_a_symbol(lake_settings):
    (latest,) = one(lake_settings, queries.latest_anomaly("BINANCE:BTCUSDT"))
    assert latest["window_start"] == TODAY.start + timedelta(hours=3, minutes=1) and latest["top_features"] == "ret_z"
    assert latest["explanation"] == "volume 900, 30x its 60-bar median (30)"
    news = one(lake_settings, queries.recent_news("AAPL", limit=2))
    assert [n["headline"] for n in news] == ["AAPL news 0", "AAPL news 1"]


def test_day_bars_aggregate_one_day_of_trades(lake_settings):
    (row,) = one(lake_settings, queries.day_bars((TODAY.start - timedelta(days=1)).date()))
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"], row["trades"]) == (10, 12, 9, 11, 5, 4)


def test_symbol_crafted_as_sql_is_only_a_value(lake_settings):
    crafted = "AAPL' OR '1'='1"
    assert one(lake_settings, queries.anomaly_count(TODAY, symbol=crafted))[0]["anomalies"] == 0
    assert one(lake_settings, queries.latest_price(crafted)) == []


def test_a_table_created_later_appears_without_a_restart(lake_settings):
    engine = sql_engine(lake_settings)
    with engine.connect() as connection:  # a pooled connection made before the table exists
        assert connection.exec_driver_sql("SELECT count(*) FROM market.trades").scalar() == 4
    name = f"my_signals_{lake_settings.sql_engine}"
    write_deltalake(str(lake_settings.lake_dir / name), pa.table({"x": [1, 2, 3]}))
    if lake_settings.sql_engine == "trino":  # the trino-sync service's pass, which make up runs every 10 s
        trino_lake.sync(trino_engine(lake_settings, lake_settings.trino_admin_user), lake_settings.lake_dir,
                        "local:///lake", logging.getLogger("lakewatch.trino_sync"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT sum(x) FROM market.{name}").scalar() == 6


def test_cli_prints_a_table_and_a_bad_query_gets_one_clear_line(lake_settings):
    run = lambda *args: subprocess.run([sys.executable, "-m", "stack.cli", "sql", *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    ok = run("SELECT symbol, price FROM market.latest_prices WHERE symbol = 'BINANCE:BTCUSDT'")
    assert ok.returncode == 0, ok.stderr
    assert "BINANCE:BTCUSDT" in ok.stdout and "50000" in ok.stdout and "(1 row," in ok.stdout
    as_json = run("SELECT count(*) AS n FROM market.news", "--format", "json")
    assert json.loads(as_json.stdout) == [{"n": 4}]
    bad = run("SELECT * FROM market.no_such_table")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("lakewatch sql: ") and "no_such_table" in bad.stderr
    assert "does not exist" in bad.stderr


def sql_lab_examples() -> list[str]:
    text = (REPO_ROOT / "docs" / "sql.md").read_text()
    block = text.split("## Example queries for SQL Lab", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    return [s.strip() for s in block.split(";") if s.strip()]


def test_every_sql_lab_example_in_the_docs_runs_and_parses_as_trino(lake_settings):
    examples = sql_lab_examples()
    assert len(examples) >= 8
    with sql_engine(lake_settings).connect() as connection:
        for example in examples:
            connection.exec_driver_sql(example).all()
            sqlglot.parse_one(example, read="trino")


def _comparable(value):
    """One value as both engines' clients should agree on it: instants in UTC (Trino's client
    hands back its session zone), numbers to 9 significant digits."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (float, Decimal)):
        return float(f"{float(value):.9g}")
    return value


def test_both_engines_agree_row_for_row_on_every_view_and_sql_lab_example(lake, trino):
    statements = [f"SELECT * FROM market.{view.name}" for view in views.VIEWS] + sql_lab_examples()
    for statement in statements:
        answers = []
        for settings in (lake, trino):
            with sql_engine(settings).connect() as connection:
                result = connection.exec_driver_sql(statement)
                answers.append((list(result.keys()),
                                sorted((tuple(_comparable(v) for v in row) for row in result), key=repr)))
        assert answers[0] == answers[1], statement


def test_trino_refuses_every_write_and_ddl_to_a_reader_and_the_lake_is_unchanged(trino, tmp_path):
    """Trino's own access control, whatever Superset's guard does: a reader may only SELECT."""
    before = {p: p.stat().st_mtime_ns for p in trino.lake_dir.rglob("*")}
    accepted = []
    with sql_engine(trino).connect() as connection:
        for family, statement in hostile_sql.trino_statements(tmp_path):
            try:
                result = connection.exec_driver_sql(statement)
                if result.returns_rows:
                    result.fetchall()
                accepted.append((family, statement))
            except sa.exc.DBAPIError as error:
                # Refused by the rules, or (table procedures, which the rules do not cover) by the
                # connector, which writes to no local file system (no delta.enable-non-concurrent-writes).
                assert "name=PERMISSION_DENIED" in str(error) or "Writes are not enabled" in str(error), (
                    statement, str(error)[:300])
    assert accepted == []
    assert {p: p.stat().st_mtime_ns for p in trino.lake_dir.rglob("*")} == before
    assert hostile_sql.files_under(tmp_path) == set()
    assert {f for f, _ in hostile_sql.trino_statements(tmp_path)} == set(hostile_sql.TRINO_FAMILIES)


def test_trino_serves_metrics_to_prometheus_and_health_as_the_runner_reads_it(trino):
    import requests

    from monitoring.prometheus import TRINO_METRICS_USER
    from stack.services import trino as trino_service

    assert trino_service.healthy(trino)
    metrics = requests.get(trino.url(trino.trino_port, "/metrics"), auth=(TRINO_METRICS_USER, ""), timeout=10)
    assert metrics.status_code == 200 and "trino_" in metrics.text
    anyone = requests.get(trino.url(trino.trino_port, "/metrics"), auth=(trino.trino_user, ""), timeout=10)
    assert anyone.status_code == 403


def test_a_restarted_trino_scans_every_table_as_soon_as_it_is_started_and_synced(lake, tmp_path):
    # Trino says it has started seconds before it can schedule a scan (NO_NODES_AVAILABLE); after a
    # restart, with the tables already registered, the first pass has nothing to hide that behind.
    settings = dataclasses.replace(lake, sql_engine="trino", trino_port=free_port(),
                                   state_dir=state_over(tmp_path / "restarted", lake.lake_dir))
    settings.log_dir.mkdir(parents=True)
    stop_process(start_trino(settings), timeout=30)
    proc = start_trino(settings)
    try:
        expected = {table.name: lake_count(settings, table.name) for table in tables.ALL_TABLES}
        started = time.monotonic()
        with sql_engine(settings).connect() as connection:
            while time.monotonic() - started < 6:  # longer than Trino's node poll (5 s)
                for name, rows in expected.items():
                    assert connection.exec_driver_sql(f"SELECT count(*) FROM market.{name}").scalar() == rows
    finally:
        sql_engine(settings).dispose()
        stop_process(proc, timeout=30)


def test_a_table_gone_from_the_lake_is_unregistered_from_trino(trino):
    import shutil

    name = "short_lived"
    write_deltalake(str(trino.lake_dir / name), pa.table({"x": [1]}))
    admin = trino_engine(trino, trino.trino_admin_user)
    assert trino_lake.sync(admin, trino.lake_dir, "local:///lake", logging.getLogger("lakewatch.trino_sync")) == 1
    shutil.rmtree(trino.lake_dir / name)
    trino_lake.sync(admin, trino.lake_dir, "local:///lake", logging.getLogger("lakewatch.trino_sync"))
    with sql_engine(trino).connect() as connection:
        assert name not in connection.exec_driver_sql("SHOW TABLES FROM market").scalars().all()
