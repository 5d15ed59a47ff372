"""Superset's saved queries are generated from the bot's builders, and ask what the bot asks.

- The checked-in YAML files and docs/sql.md's examples are exactly what
  lakewatch/sql/saved_queries.py generates (run it with --write after changing a question).
- Every saved query reads the same for DuckDB and Trino, and parses as Trino.
- On a small lake, every question asked as its saved SQL (the session's clock stopped at an
  instant) and as the bot asks it (bound datetimes computed at that instant) returns the same
  rows: on a Monday just after midnight and on the Sunday ending that week just before midnight,
  in zones either side of UTC.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlglot
import yaml

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import queries, saved_queries
from testkit.known_lake import anomaly, bar, reject, write
from tests.unit.test_periods import frozen_clock

QUESTIONS = {q.name: q for q in saved_queries.QUESTIONS}
MONDAY = datetime(2026, 11, 23)  # local midnight starting the week of the lake below
MONDAY_JUST_AFTER_MIDNIGHT = MONDAY + timedelta(seconds=30)
SUNDAY_JUST_BEFORE_MIDNIGHT = MONDAY + timedelta(days=7, seconds=-30)


def test_the_saved_queries_and_the_sql_docs_are_what_the_questions_generate():
    stale = [str(p.relative_to(REPO_ROOT)) for p in saved_queries.out_of_date()]
    assert stale == [], "run: var/venvs/core/bin/python -m lakewatch.sql.saved_queries --write"


@pytest.mark.parametrize("name", QUESTIONS)
def test_a_saved_query_file_reads_back_as_its_question(name):
    question = QUESTIONS[name]
    saved = yaml.safe_load(saved_queries.yaml_text(question))
    assert (saved["label"], saved["description"], saved["uuid"]) == (question.label, question.description, question.uuid)
    assert saved["sql"].strip() == saved_queries.sql_text(question)
    lake_database = yaml.safe_load((REPO_ROOT / "superset" / "assets" / "databases" / "lake.yaml").read_text())
    assert saved["database_uuid"] == lake_database["uuid"]


@pytest.mark.parametrize("name", QUESTIONS)
def test_a_saved_query_is_one_text_for_both_engines(name):
    query = saved_queries.saved_select(QUESTIONS[name])
    text = saved_queries.compile_text(query, "duckdb")
    assert saved_queries.compile_text(query, "trino") == text
    for dialect in ("trino", "duckdb"):
        sqlglot.parse_one(text, read=dialect)


def _local(day_offset: float, zone: str) -> datetime:
    """`day_offset` days after the Monday's midnight in `zone`, as UTC (what the lake stores)."""
    return (MONDAY.replace(tzinfo=ZoneInfo(zone)) + timedelta(days=day_offset)).astimezone(timezone.utc)


# Flagged bars and rejects on both sides of each midnight that matters, in days after Monday 00:00.
AROUND_MIDNIGHTS = (-1.5, -1 / 1440, 0, 1 / 1440, 0.5, 1 - 1 / 1440, 1, 2.5, 6, 7 - 1 / 1440, 7, 7 + 1 / 1440)


def _trade(symbol: str, asset_class: str, at: datetime, price: float, volume: float) -> dict:
    return {"symbol": symbol, "asset_class": asset_class, "price": price, "volume": volume, "trade_ts": at,
            "source": "test", "kafka_partition": 0, "kafka_offset": 0, "ingested_at": at, "in_bar": True,
            "trade_date": at.date()}


def fill_lake(lake_dir, zone: str) -> None:
    tables.ensure(lake_dir)
    write(lake_dir, tables.ANOMALIES, [
        anomaly(symbol, asset_class, _local(offset, zone), score=0.5 + i / 100)
        for i, offset in enumerate(AROUND_MIDNIGHTS)
        for symbol, asset_class in (("AAPL", "stocks"), ("BINANCE:BTCUSDT", "crypto"))
    ] + [anomaly("MSFT", "stocks", _local(2.5, zone), score=0.95),
         anomaly("MSFT", "stocks", _local(3, zone), flagged=False)])
    write(lake_dir, tables.REJECTS, [
        {**reject("BINANCE:BTCUSDT", _local(offset, zone)), "reason": "not a JSON object" if i % 2 else "no price"}
        for i, offset in enumerate(AROUND_MIDNIGHTS)])
    write(lake_dir, tables.TRADES, [
        _trade(symbol, asset_class, _local(offset, zone), 100 + 3 * i, 1 + i)
        for i, offset in enumerate((-1.75, -1.25, -0.5, -1 / 86400, 0.25, 5.1, 5.5, 6.2, 6.9))
        for symbol, asset_class in (("AAPL", "stocks"), ("EUR_USD", "forex"))])
    minutes_around = [MONDAY_JUST_AFTER_MIDNIGHT, SUNDAY_JUST_BEFORE_MIDNIGHT]
    write(lake_dir, tables.BARS_1M, [
        bar(symbol, asset_class, _local((instant - MONDAY) / timedelta(days=1), zone).replace(second=0)
            + timedelta(minutes=m), 100.0 + m, volume=2.0)
        for instant in minutes_around for m in (-1441, -61, -60, -59, -1, 0, 1)
        for symbol, asset_class in (("BINANCE:BTCUSDT", "crypto"), ("AAPL", "stocks"))])
    published = _local(-1, zone)
    write(lake_dir, tables.NEWS, [
        {"id": i, "symbol": "TSLA", "headline": f"TSLA news {i}", "source": "wire", "url": f"https://x/{i}",
         "published_at": published + timedelta(hours=i), "ingested_at": published} for i in range(12)])
    write(lake_dir, tables.FUNDAMENTALS, [
        {"symbol": s, "asset_class": "stocks", "kind": kind, "data": data, "source": "test", "ingested_at": published}
        for s in ("AAPL", "TSLA") for kind, data in (
            ("profile", f'{{"name": "{s} Inc", "finnhubIndustry": "Technology"}}'),
            ("metrics", '{"marketCapitalization": 1000.5, "peTTM": 30.1, "beta": 1.2}'))])


@pytest.fixture(scope="module", params=("UTC", "Asia/Tokyo", "America/New_York"))
def lake(request, tmp_path_factory):
    """A small lake around one week of a zone, and settings whose SQL sessions run in that zone."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEWATCH_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        env.setenv("LAKEWATCH_DAY_TIMEZONE", request.param)
        env.setenv("LAKEWATCH_SQL_ENGINE", "duckdb")  # in-process; tests/integration/test_sql.py runs Trino
        settings = settings_module.load()
    fill_lake(settings.lake_dir, request.param)
    return settings


def _rows(settings, query) -> list[tuple]:
    from lakewatch.sql import sql_engine

    with sql_engine(settings).connect() as con:
        if isinstance(query, str):
            return [tuple(r) for r in con.exec_driver_sql(query).fetchall()]
        return [tuple(r) for r in con.execute(query).fetchall()]


def asked_both_ways(settings, question, local: datetime) -> tuple[list, list]:
    """(rows of the saved SQL with the session's clock at `local`, rows of the bot's query then)."""
    zone = settings.day_timezone
    now = local.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
    saved = saved_queries.compile_text(saved_queries.saved_select(question, frozen_clock(now)), "duckdb")
    return _rows(settings, saved), _rows(settings, question.build(lambda period: period.at(now, zone)))


@pytest.mark.parametrize("local", [MONDAY_JUST_AFTER_MIDNIGHT, SUNDAY_JUST_BEFORE_MIDNIGHT], ids=["monday", "sunday"])
def test_saved_query_and_bot_agree_on_every_question(lake, local):
    for question in saved_queries.QUESTIONS:
        saved, bot = asked_both_ways(lake, question, local)
        assert saved and saved == bot, question.label


def test_saved_query_and_bot_agree_on_this_week(lake):
    question = QUESTIONS["which_stock_was_most_anomalous_this_week"]
    monday, _ = asked_both_ways(lake, question, MONDAY_JUST_AFTER_MIDNIGHT)
    sunday, _ = asked_both_ways(lake, question, SUNDAY_JUST_BEFORE_MIDNIGHT)
    assert [(symbol, n) for symbol, _, n, *_ in monday] == [("AAPL", 1)]  # the bar of Monday 00:00 only
    # Monday 00:00 and 00:01, midday, 23:59, Tuesday, Wednesday midday, Sunday 00:00 and 23:59
    assert [(symbol, n) for symbol, _, n, *_ in sunday] == [("AAPL", 8), ("MSFT", 1)]


def test_saved_query_and_bot_agree_on_today_and_yesterday(lake):
    today, yesterday = QUESTIONS["how_many_anomalies_in_crypto_today"], QUESTIONS["daily_ohlcv_per_symbol_for_yesterday_from_the_trades"]
    assert asked_both_ways(lake, today, MONDAY_JUST_AFTER_MIDNIGHT)[0] == [(4, 4)]  # 00:00, 00:01, 12:00, 23:59
    assert asked_both_ways(lake, today, SUNDAY_JUST_BEFORE_MIDNIGHT)[0] == [(2, 2)]  # 00:00, 23:59
    day_bars = asked_both_ways(lake, yesterday, MONDAY_JUST_AFTER_MIDNIGHT)[0]
    if lake.day_timezone == "UTC":  # trade_date is the UTC date: elsewhere yesterday's rows differ
        assert [(symbol, trades) for symbol, _, _, _, _, _, _, trades in day_bars] == [("AAPL", 2), ("EUR_USD", 2)]


def test_the_bot_reads_the_latest_price_as_the_saved_query_reads_the_view(lake):
    saved, _ = asked_both_ways(lake, QUESTIONS["latest_price_and_24h_change_of_aapl"], SUNDAY_JUST_BEFORE_MIDNIGHT)
    assert saved and _rows(lake, queries.latest_price("AAPL")) == saved
