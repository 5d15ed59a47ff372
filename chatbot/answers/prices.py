"""Answers about prices: a symbol's latest price and 24 h change, and what it did over a period."""
from __future__ import annotations

from chatbot.answers import Question, entities, lake, words
from lakewatch.sql import queries


def latest(q: Question) -> str:
    symbol, refusal = entities.the_symbol(q.entities, q.text, lake.known_symbols(q.settings))
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
    symbol, refusal = entities.the_symbol(q.entities, q.text, lake.known_symbols(q.settings))
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
    return text + f" The model flagged {words.anomalies(flagged)}."
