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


def _scored_in(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> list:
    a = schema.anomalies
    return ([*window.covers(a.c.window_start, a.c.window_date)]
            + ([a.c.asset_class == asset_class] if asset_class is not None else [])
            + ([a.c.symbol == symbol] if symbol is not None else []))


def _anomalies_in(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> list:
    return [schema.anomalies.c.is_anomaly, *_scored_in(window, asset_class, symbol)]


def _episodes() -> sa.ColumnElement:
    return sa.func.count().filter(views.opens_an_episode()).label("anomalies")


def anomaly_count(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> sa.Select:
    """One row: `anomalies`, the anomaly episodes that began in the window, and `flagged_bars`,
    the flagged bars in it."""
    return (sa.select(_episodes(), sa.func.count().label("flagged_bars"))
            .where(*_anomalies_in(window, asset_class, symbol)))


def top_anomalous_symbols(window: AnyWindow, limit: int = 5, asset_class: str | None = None,
                          symbols: tuple[str, ...] | None = None) -> sa.Select:
    """Symbols by anomaly episodes begun in the window, most first, with their flagged bars and
    highest score; only `symbols` when given (the bot lists the configured ones, never whatever
    else reached the lake)."""
    a = schema.anomalies
    n = _episodes()
    conditions = _anomalies_in(window, asset_class) + ([a.c.symbol.in_(symbols)] if symbols is not None else [])
    return (sa.select(a.c.symbol, a.c.asset_class, n, sa.func.count().label("flagged_bars"),
                      sa.func.max(a.c.anomaly_score).label("max_score"))
            .where(*conditions)
            .group_by(a.c.symbol, a.c.asset_class).having(sa.func.count().filter(views.opens_an_episode()) > 0)
            .order_by(n.desc(), a.c.symbol).limit(limit))


def anomaly_scores(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> sa.Select:
    """One row over every scored bar in the window, flagged or not: how many (`scored_bars`),
    their average and highest score, how many were flagged and the flagged ones' average score,
    and when the newest was scored (`last_bar`)."""
    a = schema.anomalies
    return (sa.select(sa.func.count().label("scored_bars"), sa.func.avg(a.c.anomaly_score).label("avg_score"),
                      sa.func.max(a.c.anomaly_score).label("max_score"),
                      sa.func.count().filter(a.c.is_anomaly).label("flagged_bars"),
                      sa.func.avg(a.c.anomaly_score).filter(a.c.is_anomaly).label("flagged_avg_score"),
                      sa.func.max(a.c.window_start).label("last_bar"))
            .where(*_scored_in(window, asset_class, symbol)))


def anomalies_per_hour(window: AnyWindow, asset_class: str | None = None, symbol: str | None = None) -> sa.Select:
    """Anomaly episodes begun and flagged bars per hour of the window (hours with none are absent),
    oldest first; the hour is the session's (its time zone is the day zone)."""
    a = schema.anomalies
    # 'hour' as SQL text: Trino matches GROUP BY to the select list by expression, and two bound
    # parameters are two expressions to it.
    hour = sa.func.date_trunc(sa.literal_column("'hour'"), a.c.window_start).label("hour")
    return (sa.select(hour, _episodes(), sa.func.count().label("flagged_bars"))
            .where(*_anomalies_in(window, asset_class, symbol)).group_by(hour).order_by(hour))


def top_movers(window: AnyWindow, symbols: tuple[str, ...], asset_class: str | None = None, limit: int = 5,
               falling: bool = False) -> sa.Select:
    """The symbols whose price rose (or, `falling`, fell) most over the window: the first bar's
    open to the last bar's close, as `change_pct`, among `symbols`."""
    b = schema.bars_1m
    first, last = sa.func.min_by(b.c.open, b.c.window_start), sa.func.max_by(b.c.close, b.c.window_start)
    change = ((last / sa.func.nullif(first, 0, type_=sa.Double) - 1) * 100).label("change_pct")
    conditions = [b.c.symbol.in_(symbols), *window.covers(b.c.window_start)]
    if asset_class is not None:
        conditions.append(b.c.asset_class == asset_class)
    return (sa.select(b.c.symbol, first.label("open"), last.label("close"), change)
            .where(*conditions).group_by(b.c.symbol)
            .order_by(change.asc() if falling else change.desc(), b.c.symbol).limit(limit))


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
