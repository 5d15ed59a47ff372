"""What a question is about: its symbols, asset class and period, as values the lake knows.

Rasa extracts entities from lookup tables, synonyms and regexes (data/nlu/entities.yml). This
module maps them onto the configured or stored symbols, the three asset classes and a time
window. A value it cannot map is reported back to the user, never passed on to SQL: together
with bound parameters (lakewatch.sql.queries) that keeps entity text out of SQL text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable

from chatbot.answers import words
from lakewatch.settings import ASSET_CLASSES
from lakewatch.sql import periods

ASSET_CLASS_WORDS = {
    "crypto": "crypto", "cryptos": "crypto", "cryptocurrency": "crypto", "cryptocurrencies": "crypto",
    "coins": "crypto", "stocks": "stocks", "stock": "stocks", "equities": "stocks", "equity": "stocks",
    "shares": "stocks", "forex": "forex", "fx": "forex", "currencies": "forex", "currency pairs": "forex",
}
assert set(ASSET_CLASS_WORDS.values()) == set(ASSET_CLASSES)

# Words after "of", "for", "on", ... that are not a symbol someone meant.
_NOT_A_SYMBOL = {"the", "a", "an", "my", "me", "it", "this", "that", "today", "yesterday", "now", "us", "you",
                 "all", "any", "each", "every", "them", "its", "last", "past", "previous", "since", "model",
                 "price", "prices", "news", "anomalies", "anomaly", "crypto", "stocks", "forex", "week", "day",
                 "hour", "month", "lakewatch", "sql", "utc"}
_UPPER_TOKEN = re.compile(r"(?<![\w:/])([A-Z][A-Z0-9]*(?:[:_/.-][A-Z0-9]+)*)(?![\w:/])")
_AFTER_PREPOSITION = re.compile(r"\b(?:of|for|on|about|with|to|is)\s+([A-Za-z][\w:/.-]*)")


class NotUnderstood(ValueError):
    """A value the user gave that lakewatch cannot use; the message says why, for the user."""


@dataclass
class Symbols:
    """The symbols a message names: `found` are known to lakewatch, `unknown` are not."""
    found: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _index(known: Iterable[str]) -> dict[str, str]:
    """Every spelling of a known symbol that means it: AAPL, BINANCE:BTCUSDT, BTCUSDT, EUR_USD."""
    index: dict[str, str] = {}
    for symbol in known:
        index.setdefault(symbol.split(":", 1)[-1].upper(), symbol)
    for symbol in known:
        index[symbol.upper()] = symbol
    return index


def _lookup(value: str, index: dict[str, str]) -> str | None:
    spelled = value.strip().upper()
    for candidate in (spelled, spelled.replace("/", "_"), spelled.replace("/", "")):
        if candidate in index:
            return index[candidate]
    return None


def match_symbol(value: str, known: Iterable[str]) -> str | None:
    return _lookup(value, _index(known))


def symbols_in(entities: list[dict], text: str, known: Iterable[str]) -> Symbols:
    """Symbols from the message's `symbol` entities; without any, known symbols typed in capitals
    (one configured after the bot was trained); and what looks like a symbol but is none."""
    index = _index(known)
    result = Symbols()
    for value in [str(e.get("value", "")) for e in entities if e.get("entity") == "symbol"]:
        symbol = _lookup(value, index)
        target = result.found if symbol else result.unknown
        if (symbol or value) not in target:
            target.append(symbol or value)
    if result.found or result.unknown:
        return result
    for token in _UPPER_TOKEN.findall(text):
        symbol = _lookup(token, index)
        if symbol and symbol not in result.found:
            result.found.append(symbol)
        elif not symbol and len(token) > 1 and token.lower() not in _NOT_A_SYMBOL and token not in result.unknown:
            result.unknown.append(token)
    if not result.found and not result.unknown:
        result.unknown = [w for w in _AFTER_PREPOSITION.findall(text) if w.lower() not in _NOT_A_SYMBOL][:1]
    return result


def the_symbol(entities: list[dict], text: str, known: Iterable[str]) -> tuple[str | None, str | None]:
    """For questions about one symbol: (symbol, None), or (None, the answer to give when the
    message names no symbol lakewatch knows)."""
    symbols = symbols_in(entities, text, known)
    if symbols.found:
        return symbols.found[0], None
    return None, words.unknown_symbol(symbols.unknown[0], known) if symbols.unknown else words.which_symbol(known)


def asset_class_in(entities: list[dict]) -> str | None:
    for e in entities:
        if e.get("entity") == "asset_class":
            value = str(e.get("value", "")).strip().lower()
            if value not in ASSET_CLASS_WORDS:
                raise NotUnderstood(f"I don't know the asset class \"{e.get('value')}\"; "
                                    f"I know {', '.join(ASSET_CLASSES)}.")
            return ASSET_CLASS_WORDS[value]
    return None


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LAST = re.compile(r"(?:last|past|previous)(?: (\d+))? (minute|min|hour|hr|day|week)s?")
_UNITS = {"min": "minute", "hr": "hour"}


def window_of(entities: list[dict], now: datetime, zone: str, default: str = "today") -> periods.Window:
    """The time window the message's `period` entity names, or `default` (a period phrase)."""
    phrase = next((str(e.get("value", "")) for e in entities if e.get("entity") == "period"), default)
    return parse_period(phrase, now, zone)


def parse_period(phrase: str, now: datetime, zone: str) -> periods.Window:
    text = " ".join(phrase.lower().split())
    if text == "today":
        return periods.today(now, zone)
    if text == "yesterday":
        return periods.yesterday(now, zone)
    if text == "this week":
        return periods.this_week(now, zone)
    if text == "this month":
        return periods.this_month(now, zone)
    if m := _LAST.fullmatch(text):
        amount = int(m.group(1) or 1)
        if amount < 1 or amount > 100_000:
            raise NotUnderstood(f"\"{phrase}\" is not a period I can look back over.")
        return periods.last(now, amount, _UNITS.get(m.group(2), m.group(2)))
    if text.startswith("since "):
        return periods.since(_day_of(text.removeprefix("since "), now, zone), now, zone)
    raise NotUnderstood(f"I don't understand the period \"{phrase}\"; try today, yesterday, this week, "
                        "the last 6 hours or since 2026-11-01.")


def _day_of(words: str, now: datetime, zone: str) -> date:
    today = periods.today(now, zone).start.date()
    if words == "yesterday":
        return today - timedelta(days=1)
    if words in _WEEKDAYS:  # the most recent such day, today included
        return today - timedelta(days=(today.weekday() - _WEEKDAYS.index(words)) % 7)
    try:
        day = date.fromisoformat(words)
    except ValueError:
        raise NotUnderstood(f"\"{words}\" is not a date I can read; write it as YYYY-MM-DD.") from None
    if day > today:
        raise NotUnderstood(f"{day:%Y-%m-%d} is in the future, so nothing has happened since then yet.")
    return day
