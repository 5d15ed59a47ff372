"""The questions several readers ask (the bot, Superset's saved queries, benchmarks), written once.

Each function returns a SQLAlchemy Core select with bound parameters only: a symbol or an
asset class typed by a user is a parameter value, never SQL text. They run unchanged on DuckDB
and Trino; tests run them on DuckDB and compile them for Trino.

A window is a period of lakewatch.sql.periods either computed at an instant (`Window`: the bot's
bound datetimes) or kept as SQL on the session's clock (`SqlWindow`: saved queries, see
saved_queries.py); the builders take either, so both ask the same question.
"""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from lakewatch.sql import schema, views
from lakewatch.sql.periods import SqlWindow, Window

AnyWindow = Window | SqlWindow


def stored_view(name: str) -> sa.TableClause:
    """A curated view as created in schema `market`, to select from by its name."""
    view = next(v for v in views.VIEWS if v.name == name)
    return sa.table(name, *(sa.column(c.name, c.type) for c in view.query.selected_columns), schema=schema.SCHEMA)


def _anomalies_in(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None):
    a = schema.anomalies
    conditions = [a.c.is_anomaly, *window.covers(a.c.window_start, a.c.window_date)]
    if asset_class is not None:
        conditions.append(a.c.asset_class == asset_class)
    if symbol is not None:
        conditions.append(a.c.symbol == symbol)
    return conditions


def _episodes() -> sa.ColumnElement:
    return sa.func.count().filter(views.opens_an_episode()).label("anomalies")


def anomaly_count(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> sa.Select:
    """One row: `anomalies`, the anomaly episodes that began in the window, and `flagged_bars`,
    the flagged bars in it."""
    return (sa.select(_episodes(), sa.func.count().label("flagged_bars"))
            .where(*_anomalies_in(window, asset_class, symbol)))


def top_anomalous_symbols(window: AnyWindow, limit: int = 5, asset_class: str | None = None) -> sa.Select:
    """Symbols by anomaly episodes begun in the window, most first, with their flagged bars and
    highest score."""
    a = schema.anomalies
    n = _episodes()
    return (sa.select(a.c.symbol, a.c.asset_class, n, sa.func.count().label("flagged_bars"),
                      sa.func.max(a.c.anomaly_score).label("max_score"))
            .where(*_anomalies_in(window, asset_class))
            .group_by(a.c.symbol, a.c.asset_class).having(sa.func.count().filter(views.opens_an_episode()) > 0)
            .order_by(n.desc(), a.c.symbol).limit(limit))


def latest_price(symbol: str, prices: sa.FromClause | None = None) -> sa.Select:
    """The symbol's row of the latest_prices view (price, 24h change), or no row. `prices` is
    where the rows come from: by default the view's query itself, as the bot asks (it does not
    depend on the view having been created); saved queries read the view by name (`stored_view`)."""
    prices = views.latest_prices().subquery("latest_prices") if prices is None else prices
    return sa.select(prices).where(prices.c.symbol == symbol)


def latest_anomalies(limit: int = 20, symbol: str | None = None) -> sa.Select:
    """The most recent flagged bars, of one symbol or of all, with their scores, explanations and top features."""
    a = schema.anomalies
    query = sa.select(a.c.symbol, a.c.asset_class, a.c.window_start, a.c.anomaly_score, a.c.explanation,
                      a.c.top_features, a.c.features, a.c.model_name, a.c.model_version).where(a.c.is_anomaly)
    if symbol is not None:
        query = query.where(a.c.symbol == symbol)
    return query.order_by(a.c.window_start.desc(), a.c.symbol).limit(limit)


def latest_anomaly(symbol: str) -> sa.Select:
    """The symbol's most recent flagged bar with its score and top features, or no row."""
    return latest_anomalies(1, symbol)


def minute_bars(symbol: str, window: AnyWindow) -> sa.Select:
    """The symbol's 1-minute bars in the window, oldest first."""
    b = schema.bars_1m
    return (sa.select(b.c.window_start, b.c.open, b.c.high, b.c.low, b.c.close, b.c.volume, b.c.trade_count)
            .where(b.c.symbol == symbol, *window.covers(b.c.window_start)).order_by(b.c.window_start))


def symbol_summary(symbol: str, window: AnyWindow) -> sa.Select:
    """One row: the symbol's 1-minute bars in the window rolled into one (open, close, high, low,
    volume, trades, bars); every value is null when it has no bar there."""
    b = schema.bars_1m
    return (sa.select(sa.func.min_by(b.c.open, b.c.window_start).label("open"),
                      sa.func.max_by(b.c.close, b.c.window_start).label("close"),
                      sa.func.max(b.c.high).label("high"), sa.func.min(b.c.low).label("low"),
                      sa.func.sum(b.c.volume).label("volume"), sa.func.sum(b.c.trade_count).label("trades"),
                      sa.func.count().label("bars"), sa.func.max(b.c.window_end).label("last_bar_end"))
            .where(b.c.symbol == symbol, *window.covers(b.c.window_start)))


def recent_news(symbol: str | None = None, limit: int = 5) -> sa.Select:
    """The newest headlines of a symbol, or of every symbol."""
    n = schema.news
    query = sa.select(n.c.symbol, n.c.published_at, n.c.headline, n.c.source, n.c.url)
    if symbol is not None:
        query = query.where(n.c.symbol == symbol)
    return query.order_by(n.c.published_at.desc(), n.c.headline).limit(limit)


def day_bars(day: date | sa.ColumnElement, asset_class: str | None = None) -> sa.Select:
    """One day of trades (`trade_date`: a date, or a window's `first_day`) aggregated into a daily
    OHLCV bar per symbol."""
    t = schema.trades
    conditions = [t.c.trade_date == day] + ([t.c.asset_class == asset_class] if asset_class else [])
    return (sa.select(t.c.symbol, t.c.asset_class,
                      sa.func.min_by(t.c.price, t.c.trade_ts).label("open"), sa.func.max(t.c.price).label("high"),
                      sa.func.min(t.c.price).label("low"), sa.func.max_by(t.c.price, t.c.trade_ts).label("close"),
                      sa.func.sum(t.c.volume).label("volume"), sa.func.count().label("trades"))
            .where(*conditions).group_by(t.c.symbol, t.c.asset_class).order_by(t.c.symbol))


def rejects_by_reason(window: AnyWindow) -> sa.Select:
    """Records rejected in the window, counted by reason, most first."""
    r = schema.rejects
    n = sa.func.count().label("records")
    return (sa.select(r.c.reason, n).where(*window.covers(r.c.rejected_at))
            .group_by(r.c.reason).order_by(n.desc(), r.c.reason))


def fundamentals() -> sa.Select:
    """The main figures of every symbol with fundamentals, by symbol."""
    f = stored_view("fundamentals_latest")
    return (sa.select(f.c.symbol, f.c.name, f.c.industry, f.c.market_cap_musd, f.c.pe_ttm, f.c.beta)
            .order_by(f.c.symbol))
