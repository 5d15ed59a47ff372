"""Curated views for analysts, defined once and created identically on DuckDB and Trino.

- latest_prices: per symbol, the close of its latest 1-minute bar and the change against the
  close of the last bar at least 24 hours before it (so a stock's Monday open compares with
  Friday's close, not with a night without trades).
- anomalies_today: the bars the model flagged today (UTC, or the configured day zone), by the
  one definition of today (lakewatch.sql.periods.TODAY); `opens_episode` marks the ones that
  count as anomalies (one per episode: opens_an_episode).
- fundamentals_latest: per symbol, the main figures of its latest Finnhub profile and metrics
  (name, industry, market cap, P/E, EPS, beta, 52-week range, dividend yield).
- prices_with_anomalies: every 1-minute bar's close beside its verdict, and `anomaly_close`, its
  close when flagged: a second series that marks the anomalies on the price line (Superset has
  no anomaly markers), with each one's explanation.
- asset_class_summary: per asset class, its symbols and last prices, anomalies (episodes) today and
  rejects today (rejects whose key is no known symbol count under 'unknown').
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from lakewatch.sql import periods, schema
from lakewatch.sql.portable import ONE_DAY, decimal_text, json_text, string_list


@dataclass(frozen=True)
class View:
    name: str
    query: sa.Select
    tables: tuple[str, ...]  # the lake tables it reads: created only once they all exist


def latest_prices() -> sa.Select:
    # One scan of bars_1m: each bar knows its symbol's latest window (a window function), and
    # filtered aggregates pick the latest close and the last close a day or more before it.
    # Three times faster than joining bars_1m with itself, on a lake between compactions.
    bars = schema.bars_1m
    latest = sa.func.max(bars.c.window_start).over(partition_by=bars.c.symbol).label("latest")
    b = sa.select(bars.c.symbol, bars.c.asset_class, bars.c.window_start, bars.c.close, bars.c.last_trade_ts,
                  bars.c.updated_at, latest).cte("bars_with_latest")
    is_latest, day_before = b.c.window_start == b.c.latest, b.c.window_start <= b.c.latest - ONE_DAY

    def close_where(condition):
        return sa.func.max_by(b.c.close, b.c.window_start, type_=schema.DOUBLE()).filter(condition)

    by_symbol = (sa.select(b.c.symbol, sa.func.max(b.c.asset_class).label("asset_class"),
                           close_where(is_latest).label("price"),
                           sa.func.max(b.c.last_trade_ts).filter(is_latest).label("last_trade_ts"),
                           close_where(day_before).label("price_24h_ago"),
                           sa.func.max(b.c.updated_at).filter(is_latest).label("updated_at"))
                 .group_by(b.c.symbol).cte("by_symbol"))
    return sa.select(by_symbol.c.symbol, by_symbol.c.asset_class, by_symbol.c.price, by_symbol.c.last_trade_ts,
                     by_symbol.c.price_24h_ago, (by_symbol.c.price - by_symbol.c.price_24h_ago).label("change_24h"),
                     ((by_symbol.c.price / by_symbol.c.price_24h_ago - 1) * 100).label("change_24h_pct"),
                     by_symbol.c.updated_at)


def _today(instant: sa.ColumnElement) -> list:
    """`instant` falls today in the session's zone: the one definition of today (periods.TODAY)."""
    return periods.TODAY.in_sql().covers(instant)


def opens_an_episode(a: sa.TableClause = schema.anomalies) -> sa.ColumnElement:
    """A flagged verdict that opens its anomaly episode (model/episodes.py): counts of anomalies
    count these, so an event that flags a run of bars is one anomaly, on the day it began.
    Verdicts scored before episodes existed (no episode_start) count one each."""
    return sa.and_(a.c.is_anomaly, sa.func.coalesce(a.c.episode_start, a.c.window_start) == a.c.window_start)


def anomalies_today() -> sa.Select:
    a = schema.anomalies
    # window_date is the UTC date: within a day of the zone's date, enough to skip old partitions.
    recent = a.c.window_date >= sa.func.current_date() - ONE_DAY
    return sa.select(a, opens_an_episode(a).label("opens_episode")).where(recent, *_today(a.c.window_start),
                                                                         a.c.is_anomaly)


def prices_with_anomalies() -> sa.Select:
    b, a = schema.bars_1m, schema.anomalies
    flagged = sa.func.coalesce(a.c.is_anomaly, False)
    # A filter on window_start reaches both sides of the equi-join, so a day's chart reads a day of each.
    verdict = sa.and_(a.c.symbol == b.c.symbol, a.c.window_start == b.c.window_start)
    return (sa.select(b.c.symbol, b.c.asset_class, b.c.window_start, b.c.close, b.c.volume,
                      flagged.label("is_anomaly"), a.c.anomaly_score, a.c.explanation,
                      sa.case((flagged, b.c.close)).label("anomaly_close"))
            .select_from(b.outerjoin(a, verdict)))


def asset_class_summary() -> sa.Select:
    prices = latest_prices().cte("prices")
    a, r = schema.anomalies, schema.rejects
    classes = (sa.select(prices.c.asset_class, sa.func.count(prices.c.symbol).label("symbols"),
                         string_list(prices.c.symbol + " " + decimal_text(prices.c.price), prices.c.symbol)
                         .label("last_prices"),
                         sa.func.max(prices.c.last_trade_ts).label("last_trade_ts"))
               .group_by(prices.c.asset_class).cte("classes"))
    anomalies = (sa.select(a.c.asset_class, sa.func.count().label("anomalies_today"))
                 .where(a.c.window_date >= sa.func.current_date() - ONE_DAY, *_today(a.c.window_start),
                        opens_an_episode(a))
                 .group_by(a.c.asset_class).cte("anomalies_by_class"))
    reject_class = sa.func.coalesce(prices.c.asset_class, "unknown")
    rejects = (sa.select(reject_class.label("asset_class"), sa.func.count().label("rejects_today"))
               .select_from(r.outerjoin(prices, r.c.key == prices.c.symbol))
               .where(*_today(r.c.rejected_at))
               .group_by(reject_class).cte("rejects_by_class"))
    keys = sa.union(sa.select(classes.c.asset_class), sa.select(anomalies.c.asset_class),
                    sa.select(rejects.c.asset_class)).cte("asset_classes")
    return (sa.select(keys.c.asset_class, sa.func.coalesce(classes.c.symbols, 0).label("symbols"),
                      classes.c.last_prices, classes.c.last_trade_ts,
                      sa.func.coalesce(anomalies.c.anomalies_today, 0).label("anomalies_today"),
                      sa.func.coalesce(rejects.c.rejects_today, 0).label("rejects_today"))
            .select_from(keys.outerjoin(classes, classes.c.asset_class == keys.c.asset_class)
                         .outerjoin(anomalies, anomalies.c.asset_class == keys.c.asset_class)
                         .outerjoin(rejects, rejects.c.asset_class == keys.c.asset_class)))


# (column, kind of payload, Finnhub's key, numeric?)
FUNDAMENTAL_FIGURES = (
    ("name", "profile", "name", False), ("industry", "profile", "finnhubIndustry", False),
    ("market_cap_musd", "metrics", "marketCapitalization", True), ("pe_ttm", "metrics", "peTTM", True),
    ("eps_ttm", "metrics", "epsTTM", True), ("beta", "metrics", "beta", True),
    ("week52_high", "metrics", "52WeekHigh", True), ("week52_low", "metrics", "52WeekLow", True),
    ("dividend_yield_pct", "metrics", "dividendYieldIndicatedAnnual", True),
)


def fundamentals_latest() -> sa.Select:
    f = schema.fundamentals
    latest = (sa.select(f.c.symbol, f.c.kind, sa.func.max(f.c.ingested_at).label("ingested_at"))
              .group_by(f.c.symbol, f.c.kind).cte("latest_payload"))
    symbols = (sa.select(f.c.symbol, sa.func.max(f.c.asset_class).label("asset_class"),
                         sa.func.max(f.c.ingested_at).label("updated_at")).group_by(f.c.symbol).cte("symbols"))
    joined, payloads = symbols, {}
    for kind in ("profile", "metrics"):
        last, payload = latest.alias(f"latest_{kind}"), f.alias(f"{kind}_payload")
        joined = (joined.outerjoin(last, sa.and_(last.c.symbol == symbols.c.symbol, last.c.kind == kind))
                  .outerjoin(payload, sa.and_(payload.c.symbol == last.c.symbol, payload.c.kind == kind,
                                              payload.c.ingested_at == last.c.ingested_at)))
        payloads[kind] = payload
    figures = []
    for column, kind, key, numeric in FUNDAMENTAL_FIGURES:
        value = json_text(payloads[kind].c.data, key)
        figures.append((sa.cast(value, schema.DOUBLE()) if numeric else value).label(column))
    return sa.select(symbols.c.symbol, symbols.c.asset_class, *figures, symbols.c.updated_at).select_from(joined)


VIEWS = (
    View("latest_prices", latest_prices(), ("bars_1m",)),
    View("anomalies_today", anomalies_today(), ("anomalies",)),
    View("fundamentals_latest", fundamentals_latest(), ("fundamentals",)),
    View("asset_class_summary", asset_class_summary(), ("bars_1m", "anomalies", "rejects")),
    View("prices_with_anomalies", prices_with_anomalies(), ("bars_1m", "anomalies")),
)


def dialect(name: str) -> sa.engine.Dialect:
    if name == "trino":
        from trino.sqlalchemy.dialect import TrinoDialect

        return TrinoDialect()
    from duckdb_engine import Dialect

    return Dialect()


def select_sql(view: View, dialect_name: str) -> str:
    return str(view.query.compile(dialect=dialect(dialect_name), compile_kwargs={"literal_binds": True}))


def create_sql(view: View, dialect_name: str, schema_name: str = schema.SCHEMA) -> str:
    return f"CREATE OR REPLACE VIEW {schema_name}.{view.name} AS\n{select_sql(view, dialect_name)}"
