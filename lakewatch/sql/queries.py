"""The questions several readers ask (the bot, Superset's saved queries, benchmarks), written once.

Each function returns a SQLAlchemy Core select with bound parameters only: a symbol or an
asset class typed by a user is a parameter value, never SQL text. They run unchanged on DuckDB
and Trino; tests run them on DuckDB and compile them for Trino.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from lakewatch.sql import schema
from lakewatch.sql.periods import Window
from lakewatch.sql.views import latest_prices


def _anomalies_in(window: Window, asset_class: str | None = None, symbol: str | None = None):
    a = schema.anomalies
    first, last = window.dates
    conditions = [a.c.is_anomaly, a.c.window_date >= first, a.c.window_date <= last,
                  a.c.window_start >= window.start, a.c.window_start < window.end]
    if asset_class is not None:
        conditions.append(a.c.asset_class == asset_class)
    if symbol is not None:
        conditions.append(a.c.symbol == symbol)
    return conditions


def anomaly_count(window: Window, asset_class: str | None = None, symbol: str | None = None) -> sa.Select:
    """One row: `anomalies`, the flagged bars in the window."""
    return sa.select(sa.func.count().label("anomalies")).where(*_anomalies_in(window, asset_class, symbol))


def top_anomalous_symbols(window: Window, limit: int = 5, asset_class: str | None = None) -> sa.Select:
    """Symbols by flagged bars in the window, most first, with their highest score."""
    a = schema.anomalies
    n = sa.func.count().label("anomalies")
    return (sa.select(a.c.symbol, a.c.asset_class, n, sa.func.max(a.c.anomaly_score).label("max_score"))
            .where(*_anomalies_in(window, asset_class))
            .group_by(a.c.symbol, a.c.asset_class)
            .order_by(n.desc(), a.c.symbol).limit(limit))


def latest_price(symbol: str) -> sa.Select:
    """The symbol's row of the latest_prices view (price, 24h change), or no row."""
    prices = latest_prices().subquery("latest_prices")
    return sa.select(prices).where(prices.c.symbol == symbol)


def latest_anomaly(symbol: str) -> sa.Select:
    """The symbol's most recent flagged bar with its score and top features, or no row."""
    a = schema.anomalies
    return (sa.select(a.c.symbol, a.c.asset_class, a.c.window_start, a.c.anomaly_score, a.c.top_features,
                      a.c.features, a.c.model_name, a.c.model_version)
            .where(a.c.symbol == symbol, a.c.is_anomaly)
            .order_by(a.c.window_start.desc()).limit(1))


def symbol_summary(symbol: str, window: Window) -> sa.Select:
    """One row: the symbol's 1-minute bars in the window rolled into one (open, close, high, low,
    volume, trades, bars); every value is null when it has no bar there."""
    b = schema.bars_1m
    return (sa.select(sa.func.min_by(b.c.open, b.c.window_start).label("open"),
                      sa.func.max_by(b.c.close, b.c.window_start).label("close"),
                      sa.func.max(b.c.high).label("high"), sa.func.min(b.c.low).label("low"),
                      sa.func.sum(b.c.volume).label("volume"), sa.func.sum(b.c.trade_count).label("trades"),
                      sa.func.count().label("bars"), sa.func.max(b.c.window_end).label("last_bar_end"))
            .where(b.c.symbol == symbol, b.c.window_start >= window.start, b.c.window_start < window.end))


def recent_news(symbol: str | None = None, limit: int = 5) -> sa.Select:
    """The newest headlines of a symbol, or of every symbol."""
    n = schema.news
    query = sa.select(n.c.symbol, n.c.published_at, n.c.headline, n.c.source, n.c.url)
    if symbol is not None:
        query = query.where(n.c.symbol == symbol)
    return query.order_by(n.c.published_at.desc(), n.c.headline).limit(limit)


def day_bars(day: date, asset_class: str | None = None) -> sa.Select:
    """One day of trades aggregated into a daily OHLCV bar per symbol."""
    t = schema.trades
    conditions = [t.c.trade_date == day] + ([t.c.asset_class == asset_class] if asset_class else [])
    return (sa.select(t.c.symbol, t.c.asset_class,
                      sa.func.min_by(t.c.price, t.c.trade_ts).label("open"), sa.func.max(t.c.price).label("high"),
                      sa.func.min(t.c.price).label("low"), sa.func.max_by(t.c.price, t.c.trade_ts).label("close"),
                      sa.func.sum(t.c.volume).label("volume"), sa.func.count().label("trades"))
            .where(*conditions).group_by(t.c.symbol, t.c.asset_class).order_by(t.c.symbol))
