"""Answers about prices: symbols' latest price and 24 h change, what a symbol did over a period,
and the biggest movers up or down."""
from __future__ import annotations

from datetime import datetime, timezone

from chatbot.answers import Question, entities, lake, words
from lakewatch import markets
from lakewatch.sql import queries

MOVERS = 5


def latest(q: Question) -> str:
    q.uses("symbol")
    if entities.means_now(q.entities):  # "what is BTC at right now": the latest price is that
        q.uses("period")
    return entities.each_symbol(q.entities, q.text, lake.known_symbols(q.settings), lambda s: _latest_of(q, s))


def _latest_of(q: Question, symbol: str) -> str:
    found = lake.rows(q.settings, "latest_price", queries.latest_price(symbol))
    if not found or found[0]["price"] is None:
        return f"{symbol} has no trades in the lake yet." + _while_closed(q, symbol)
    p = found[0]
    zone = q.settings.day_timezone
    text = f"{symbol} last traded at {words.price(p['price'])} ({words.at(p['last_trade_ts'], zone)})"
    if p["price_24h_ago"] is None:
        return text + "; the lake has no price from 24 hours before that yet, so no 24 h change."
    change = f"{'+' if p['change_24h'] >= 0 else '-'}{words.price(abs(p['change_24h']))}"
    return (text + f", {words.signed_pct(p['change_24h_pct'])} ({change}) over the 24 hours before that "
            f"(from {words.price(p['price_24h_ago'])}).")


def _while_closed(q: Question, symbol: str) -> str:
    """Why a symbol has not traded, when its market is closed now: its hours and when it opens
    (on a weekend night a new stack holds no stock trade at all)."""
    asset_class, now_ms = q.settings.asset_class_of(symbol), int(q.now.timestamp() * 1000)
    opens_ms = markets.next_open(asset_class, now_ms, markets.hours_of(q.settings))
    if opens_ms <= now_ms:  # open now: next_open is this minute
        return ""
    opens = datetime.fromtimestamp(opens_ms / 1000, timezone.utc)
    return f" Its market is closed: {markets.HOURS[asset_class]}; it opens at {words.at(opens, q.settings.day_timezone)}."


def summary(q: Question) -> str:
    q.uses("symbol", "period", "time_range")
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone, default="last 24 hours")
    return entities.each_symbol(q.entities, q.text, lake.known_symbols(q.settings),
                                lambda s: _summary_of(q, s, window))


def _summary_of(q: Question, symbol: str, window) -> str:
    (bars,) = lake.rows(q.settings, "symbol_summary", queries.symbol_summary(symbol, window))
    if not bars["bars"]:
        return f"{symbol} did not trade {window.label}." + _while_closed(q, symbol)
    change = (bars["close"] / bars["open"] - 1) * 100 if bars["open"] else None
    text = (f"{symbol} {window.label}: opened at {words.price(bars['open'])}, last {words.price(bars['close'])} "
            f"({words.signed_pct(change)}), high {words.price(bars['high'])}, low {words.price(bars['low'])}; "
            f"volume {bars['volume']:,.4g} in {words.plural(int(bars['trades']), 'trade')} over "
            f"{words.plural(bars['bars'], 'one-minute bar')}.")
    try:
        (flagged,) = lake.rows(q.settings, "anomaly_count", queries.anomaly_count(window, symbol=symbol))
    except lake.NoDataYet:
        return text + " The model has not scored any bar yet."
    return text + f" The model flagged {words.anomalies(flagged)}."


def movers(q: Question) -> str:
    """The symbols that rose or fell most over a period (today unless named), first bar's open to
    last bar's close; both directions when the question names neither."""
    q.uses("asset_class", "period", "time_range", "direction")
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone)
    directions = entities.all_of(q.entities, "direction", entities.DIRECTIONS) or list(entities.DIRECTIONS)
    known = lake.known_symbols(q.settings)
    sections = []
    for asset_class in entities.asset_classes_in(q.entities) or [None]:
        scope = asset_class or "all symbols"
        for falling in (d == "down" for d in directions):
            ranked = lake.rows(q.settings, "top_movers",
                               queries.top_movers(window, known, asset_class, MOVERS, falling))
            if not ranked:
                sections.append(f"No trades in {scope} {window.label}.")
                break
            lines = [f"{i}. {r['symbol']}: {words.signed_pct(r['change_pct'])} (from {words.price(r['open'])} "
                     f"to {words.price(r['close'])})" for i, r in enumerate(ranked, 1)]
            sections.append(f"Biggest {'fallers' if falling else 'risers'} in {scope} {window.label}, "
                            "first open to last close:\n" + "\n".join(lines))
    return "\n".join(sections)
