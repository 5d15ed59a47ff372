"""Answers about news: the most recent headlines for a symbol, or across all symbols."""
from __future__ import annotations

from chatbot.answers import Question, entities, lake, words
from lakewatch.sql import queries

HEADLINES = 5


def recent(q: Question) -> str:
    q.uses("symbol")
    known = lake.known_symbols(q.settings)
    symbols = entities.symbols_in(q.entities, q.text, known)
    if refusal := entities.only_unknown(symbols, known):
        return refusal
    return "\n".join(_headlines(q, symbol) for symbol in symbols.found or [None])


def _headlines(q: Question, symbol: str | None) -> str:
    found = lake.rows(q.settings, "recent_news", queries.recent_news(symbol, HEADLINES))
    scope = f"on {symbol}" if symbol else "across all symbols"
    if not found:
        return f"No news {scope} in the lake yet."
    zone = q.settings.day_timezone
    lines = [f"- {words.at(n['published_at'], zone)}: {n['headline']}" + (f" ({n['source']})" if n["source"] else "")
             + (f" {n['url']}" if n["url"] else "") for n in found]
    return f"The {words.plural(len(found), 'latest headline')} {scope} (most recent first):\n" + "\n".join(lines)
