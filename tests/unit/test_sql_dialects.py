"""Shared queries and curated views compile for both engines, and both engines' parsers read them.

A fast static check before the real one: every statement is compiled with the Trino SQLAlchemy
dialect and parsed by sqlglot's Trino grammar; tests/integration/test_sql.py runs them on real
DuckDB and real Trino and compares the answers.
"""
from datetime import date, datetime, time, timezone

import pytest
import sqlglot

from lakewatch.sql import periods, queries, views

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)
CRAFTED = "AAPL'; DROP TABLE market.trades; --"

SHARED_QUERIES = {
    "anomaly_count": queries.anomaly_count(periods.today(NOW), asset_class=CRAFTED),
    "anomaly_count_symbol": queries.anomaly_count(periods.last(NOW, 3, "hour"), symbol=CRAFTED),
    "top_anomalous_symbols": queries.top_anomalous_symbols(periods.this_week(NOW), 3, asset_class=CRAFTED),
    "latest_price": queries.latest_price(CRAFTED),
    "latest_anomaly": queries.latest_anomaly(CRAFTED),
    "latest_anomalies": queries.latest_anomalies(20, symbol=CRAFTED),
    "minute_bars": queries.minute_bars(CRAFTED, periods.last(NOW, 1, "hour")),
    "minute_bars_on_the_session_clock": queries.minute_bars(CRAFTED, periods.the_last(1, "hour").in_sql()),
    "anomaly_count_on_the_session_clock": queries.anomaly_count(periods.THIS_WEEK.in_sql(), symbol=CRAFTED),
    "recent_news": queries.recent_news(CRAFTED),
    "symbol_summary": queries.symbol_summary(CRAFTED, periods.last(NOW, 1, "hour")),
    "day_bars": queries.day_bars(date(2026, 11, 20), asset_class=CRAFTED),
    "anomaly_scores": queries.anomaly_scores(periods.today(NOW), asset_class=CRAFTED),
    "anomalies_per_hour": queries.anomalies_per_hour(
        periods.within_hours(periods.this_week(NOW), time(10), time(12), "UTC", "between 10:00 and 12:00"),
        symbol=CRAFTED),
    "top_movers": queries.top_movers(periods.today(NOW), (CRAFTED,), asset_class=CRAFTED, falling=True),
}


@pytest.mark.parametrize("dialect", ["duckdb", "trino"])
@pytest.mark.parametrize("view", views.VIEWS, ids=lambda v: v.name)
def test_curated_view_parses_in_both_dialects(view, dialect):
    statement = sqlglot.parse_one(views.create_sql(view, dialect), read=dialect)
    assert statement.key == "create"


@pytest.mark.parametrize("dialect", ["duckdb", "trino"])
@pytest.mark.parametrize("name", SHARED_QUERIES)
def test_shared_query_parses_in_both_dialects(name, dialect):
    compiled = SHARED_QUERIES[name].compile(dialect=views.dialect(dialect), compile_kwargs={"literal_binds": True})
    sqlglot.parse_one(str(compiled), read=dialect)


@pytest.mark.parametrize("dialect", ["duckdb", "trino"])
@pytest.mark.parametrize("name", SHARED_QUERIES)
def test_user_values_are_bound_parameters_never_sql_text(name, dialect):
    compiled = SHARED_QUERIES[name].compile(dialect=views.dialect(dialect))
    assert "DROP TABLE" not in str(compiled)
    assert CRAFTED in compiled.params.values()


def test_trino_divides_doubles_without_a_cast_to_real():
    """SQLAlchemy's Float makes the Trino dialect cast divisors to REAL (32-bit): prices need DOUBLE."""
    for view in views.VIEWS:
        assert "REAL" not in views.create_sql(view, "trino")


def test_dialects_differ_only_where_portable_says_so():
    summary = next(v for v in views.VIEWS if v.name == "asset_class_summary")
    assert "string_agg(" in views.select_sql(summary, "duckdb")
    assert "array_join(array_agg(" in views.select_sql(summary, "trino")
