"""Answers about prices: a symbol's latest price and 24 h change, and what it did over a period."""
from __future__ import annotations

from chatbot.answers import Question, entities, lake, words
from lakewatch.sql import queries


def _symbol(q: Question) -> tuple[str | None, str | None]:
    """(symbol, None), or (None, the answer to give when the message names no known symbol)."""
    known = lake.known_symbols(q.settings)
    symbols = entities.symbols_in(q.entities, q.text, known)
    if symbols.found:
        return symbols.found[0], None
    return None, words.unknown_symbol(symbols.unknown[0], known) if symbols.unknown else words.which_symbol(known)


def latest(q: Question) -> str:
    symbol, refusal = _symbol(q)
    if refusal:
        return refusal
    found = lake.rows(q.settings, "latest_price", queries.latest_price(symbol), ("bars_1m",))
    if not found or found[0]["price"] is None:
        return f"{symbol} has no trades in the lake yet."
    p = found[0]
    zone = q.settings.day_timezone
    text = f"{symbol} last traded at {words.price(p['price'])} ({words.at(p['last_trade_ts'], zone)})"
    if p["price_24h_ago"] is None:
        return text + "; the lake has no price from 24 hours before that yet, so no 24 h change."
    change = f"{'+' if p['change_24h'] >= 0 else '-'}{words.price(abs(p['change_24h']))}"
    return (text + f", {words.signed_pct(p['change_24h_pct'])} ({change}) over the 24 hours before that "
            f"(from {words.price(p['price_24h_ago'])}).")


def summary(q: Question) -> str:
    symbol, refusal = _symbol(q)
    if refusal:
        return refusal
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone, default="last 24 hours")
    (bars,) = lake.rows(q.settings, "symbol_summary", queries.symbol_summary(symbol, window), ("bars_1m",))
    if not bars["bars"]:
        return f"{symbol} did not trade {window.label}."
    change = (bars["close"] / bars["open"] - 1) * 100 if bars["open"] else None
    text = (f"{symbol} {window.label}: opened at {words.price(bars['open'])}, last {words.price(bars['close'])} "
            f"({words.signed_pct(change)}), high {words.price(bars['high'])}, low {words.price(bars['low'])}; "
            f"volume {bars['volume']:,.4g} in {words.plural(int(bars['trades']), 'trade')} over "
            f"{words.plural(bars['bars'], 'one-minute bar')}.")
    try:
        (flagged,) = lake.rows(q.settings, "anomaly_count", queries.anomaly_count(window, symbol=symbol),
                               ("anomalies",))
    except lake.NoDataYet:
        return text + " The model has not scored any bar yet."
    return text + f" The model flagged {words.plural(flagged['anomalies'], 'anomaly', 'anomalies')}."
