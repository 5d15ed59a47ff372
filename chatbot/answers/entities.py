"""What a question is about: its symbols, asset class and period, as values the lake knows.

Rasa extracts entities from lookup tables, synonyms and regexes (data/nlu/entities.yml). This
module maps them onto the configured or stored symbols, the three asset classes and a time
window. A value it cannot map is reported back to the user, never passed on to SQL: together
with bound parameters (lakewatch.sql.queries) that keeps entity text out of SQL text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable

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
                 "hour", "month", "lakewatch", "sql", "utc", "flagged", "score", "scores", "bar", "bars", "minute",
                 "minutes", "hours", "days", "weeks", "trades", "volume", "change", "movers", "everything",
                 "anything", "something", "time", "open", "close", "market", "average", "max", "maximum", "hourly",
                 "strange", "normal", "unusual", "up", "down", "yesterday's", "today's", "date", "range", "from",
                 "between", "flags", "alerts", "spikes", "outliers", "detections", "anomalous", "moves"}
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
    # A word after "of" or "for" may be a symbol nobody configured, unless the message names its
    # subject otherwise: "number of spikes in coins" counts crypto's.
    if not result.found and not result.unknown and not any(e.get("entity") == "asset_class" for e in entities):
        said = {w.lower() for e in entities for w in typed(e, text).split()}  # words another entity took
        result.unknown = [w for w in _AFTER_PREPOSITION.findall(text)
                          if w.lower() not in _NOT_A_SYMBOL | ASSET_CLASS_WORDS.keys() | said][:1]
    return result


def each_symbol(entities: list[dict], text: str, known: Iterable[str], say: Callable[[str], str]) -> str:
    """For questions about symbols: `say`'s answer for each known one the message names (several
    in a comparison), a line each; or the answer to give when it names none lakewatch knows."""
    symbols = symbols_in(entities, text, known)
    return "\n".join(map(say, symbols.found)) if symbols.found else no_symbol(symbols, known)


def only_unknown(symbols: Symbols, known: Iterable[str]) -> str | None:
    """The answer when the message names symbols and none of them is one lakewatch follows."""
    return words.unknown_symbol(symbols.unknown[0], known) if symbols.unknown and not symbols.found else None


def no_symbol(symbols: Symbols, known: Iterable[str]) -> str:
    """The answer to a question about a symbol that names none lakewatch follows."""
    return words.unknown_symbol(symbols.unknown[0], known) if symbols.unknown else words.which_symbol(known)


def _meanings(entities: list[dict], kind: str, meaning: dict[str, str], refusal: Callable[[object], str]) -> list[str]:
    """What the message's `kind` entities mean, in order, each once; a value with no meaning is
    refused with `refusal(value)`."""
    found: list[str] = []
    for e in entities:
        if e.get("entity") == kind:
            value = str(e.get("value", "")).strip().lower()
            if value not in meaning:
                raise NotUnderstood(refusal(e.get("value")))
            if meaning[value] not in found:
                found.append(meaning[value])
    return found


def asset_classes_in(entities: list[dict]) -> list[str]:
    """Every asset class the message names, in order, each once."""
    return _meanings(entities, "asset_class", ASSET_CLASS_WORDS,
                     lambda v: f"I don't know the asset class \"{v}\"; I know {', '.join(ASSET_CLASSES)}.")


def asset_class_in(entities: list[dict]) -> str | None:
    return next(iter(asset_classes_in(entities)), None)


METRICS = ("average", "maximum", "per hour")
DIRECTIONS = ("up", "down")


def all_of(entities: list[dict], kind: str, allowed: tuple[str, ...]) -> list[str]:
    """The message's `kind` entities (metric, direction) as canonical values, in order, each once."""
    return _meanings(entities, kind, {v: v for v in allowed},
                     lambda v: f"I don't understand \"{v}\" here; I know {', '.join(allowed)}.")


def read_as(entities: list[dict], text: str) -> list[str]:
    """What the message said that was matched to a known value by spelling, not exactly
    (chatbot/fuzzy_entities.py), so the answer can say how it was read."""
    return [f"(Reading \"{typed(e, text)}\" as {e['value']}.)" for e in entities
            if e.get("extractor") == FUZZY and not e.get("candidates")]


def ambiguity(entities: list[dict], text: str) -> str | None:
    """The question back when a misspelt word is as close to two known values."""
    for e in entities:
        if e.get("extractor") == FUZZY and e.get("candidates"):
            options = [str(c) for c in e["candidates"]]
            return f"Did you mean {', '.join(options[:-1])} or {options[-1]} by \"{typed(e, text)}\"?"
    return None


FUZZY = "FuzzyEntityExtractor"


def typed(entity: dict, text: str) -> str:
    """The words the user typed for an entity (its value may be the canonical one)."""
    start, end = entity.get("start"), entity.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
        return text[start:end]
    return str(entity.get("value", ""))


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LAST = re.compile(r"(?:last|past|previous)(?: (\d+))? (minute|min|hour|hr|day|week)s?")
_UNITS = {"min": "minute", "hr": "hour"}


_NOW_WORDS = ("now", "right now", "currently", "at the moment")
_DAY_RANGE = re.compile(r"(?:from|between) (\S+) (?:to|and|until|till) (\S+)")


def means_now(entities: list[dict]) -> bool:
    periods_named = [" ".join(str(e.get("value", "")).lower().split()) for e in entities if e.get("entity") == "period"]
    return bool(periods_named) and all(p in _NOW_WORDS for p in periods_named)


def window_of(entities: list[dict], now: datetime, zone: str, default: str = "today") -> periods.Window:
    """The time window the message's `period` entity names, or `default` (a period phrase), cut
    to the hours its `time_range` entity names."""
    phrase = next((str(e.get("value", "")) for e in entities if e.get("entity") == "period"), default)
    window = parse_period(phrase, now, zone)
    hours = next((str(e.get("value", "")) for e in entities if e.get("entity") == "time_range"), None)
    return window if hours is None else parse_time_range(hours, window, zone)


def parse_period(phrase: str, now: datetime, zone: str) -> periods.Window:
    text = " ".join(phrase.lower().split())
    if text in _NOW_WORDS:
        return periods.last(now, RECENT_MINUTES, "minute")
    if m := _DAY_RANGE.fullmatch(text):
        first = _day_of(m.group(1), now, zone)
        last = _day_of(m.group(2), now, zone, on_or_after=first)
        if last < first:
            raise NotUnderstood(f"\"{phrase}\" ends before it begins.")
        return periods.between_days(first, last).at(now, zone)
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


def _day_of(words: str, now: datetime, zone: str, on_or_after: date | None = None) -> date:
    today = periods.today(now, zone).start.date()
    if words == "today":
        return today
    if words == "yesterday":
        return today - timedelta(days=1)
    if words in _WEEKDAYS and on_or_after is not None:  # the end of a range: the first such day from its start
        return on_or_after + timedelta(days=(_WEEKDAYS.index(words) - on_or_after.weekday()) % 7)
    if words in _WEEKDAYS:  # the most recent such day, today included
        return today - timedelta(days=(today.weekday() - _WEEKDAYS.index(words)) % 7)
    try:
        day = date.fromisoformat(words)
    except ValueError:
        raise NotUnderstood(f"\"{words}\" is not a date I can read; write it as YYYY-MM-DD.") from None
    if day > today:
        raise NotUnderstood(f"{day:%Y-%m-%d} is in the future, so nothing has happened since then yet.")
    return day


RECENT_MINUTES = 15  # "right now": the last quarter of an hour of one-minute bars
US_MARKET = "America/New_York"
# "At the open" and "at the close": the first and last half hour of the US stock market's day.
_SESSION_EDGES = {"open": (time(9, 30), time(10, 0), "at the US stock market's open (09:30-10:00 New York time)"),
                  "close": (time(15, 30), time(16, 0), "at the US stock market's close (15:30-16:00 New York time)")}
_CLOCK = r"(\d{1,2})(?::(\d{2}))?(?: ?([ap]m))?"
_HOURS = re.compile(rf"(?:between|from) {_CLOCK} (?:and|to|until|till) {_CLOCK}")
_EDGE = re.compile(r"at (?:the )?(?:market )?(open|opening|close|closing)")


def parse_time_range(phrase: str, window: periods.Window, zone: str) -> periods.Window:
    """The window cut to the hours a phrase names: "between 10:00 and 12:00" (in the day zone) or
    "at the open" (the US stock market's first half hour)."""
    text = " ".join(phrase.lower().split())
    if m := _EDGE.fullmatch(text):
        start, end, words = _SESSION_EDGES["open" if m.group(1).startswith("open") else "close"]
        return periods.within_hours(window, start, end, US_MARKET, words)
    if m := _HOURS.fullmatch(text):
        start, end = _clock(*m.group(1, 2, 3), phrase), _clock(*m.group(4, 5, 6), phrase)
        if end <= start:
            raise NotUnderstood(f"\"{phrase}\" ends before it begins; I read times on a 24-hour clock.")
        return periods.within_hours(window, start, end, zone, f"between {start:%H:%M} and {end:%H:%M} {zone}")
    raise NotUnderstood(f"I don't understand the time of day \"{phrase}\"; try between 10:00 and 12:00, "
                        "or at the open.")


def _clock(hour: str, minute: str | None, half: str | None, phrase: str) -> time:
    h, m = int(hour), int(minute or 0)
    if half:
        if h < 1 or h > 12:
            raise NotUnderstood(f"\"{phrase}\" has a time I can't read.")
        h = h % 12 + (12 if half == "pm" else 0)
    if h == 24 and m == 0:
        return time.max
    if h > 23 or m > 59:
        raise NotUnderstood(f"\"{phrase}\" has a time I can't read.")
    return time(h, m)
