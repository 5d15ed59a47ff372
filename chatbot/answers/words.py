"""How the bot writes numbers, times and lists, the same way in every answer."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def anomalies(row) -> str:
    """"3 anomalies" from a row of anomaly counts (lakewatch.sql.queries), with the flagged bars
    beside them when an episode spans several: "3 anomalies (7 flagged minutes)"."""
    text = plural(row["anomalies"], "anomaly", "anomalies")
    if row["flagged_bars"] != row["anomalies"]:
        text += f" ({plural(row['flagged_bars'], 'flagged minute')})"
    return text


def price(value: float | None) -> str:
    """Two decimals, or five for prices below 10 (forex quotes move in the fifth decimal)."""
    if value is None:
        return "n/a"
    return f"{value:,.5f}" if abs(value) < 10 else f"{value:,.2f}"


def signed_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def at(moment: datetime | None, zone: str = "UTC") -> str:
    if moment is None:
        return "n/a"
    if moment.tzinfo is None:  # DuckDB hands back naive timestamps in UTC
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


def symbol_list(symbols) -> str:
    return ", ".join(symbols)


def unknown_symbol(name: str, known) -> str:
    return f"I don't know the symbol \"{name}\". I follow {symbol_list(known)}."


def which_symbol(known) -> str:
    return f"Which symbol do you mean? I follow {symbol_list(known)}."


# What an answer could not take into account, by entity kind: said before the answer.
_CANNOT = {"symbol": "narrow this answer to a symbol", "asset_class": "narrow this answer to an asset class",
           "period": "limit this answer to a period", "time_range": "filter this answer by time of day",
           "metric": "compute that figure here", "direction": "rank this answer by rises or falls"}


def left_out(kind: str, typed: str, another: bool = False) -> str:
    """The sentence naming a part of the message the answer did not take into account: a kind it
    cannot use, or `another` period or time of day when it used the first."""
    if another:
        one = {"time_range": "time of day"}.get(kind, kind)
        return f"I answer for one {one} at a time, so this leaves out \"{typed}\"."
    return f"I can't {_CANNOT.get(kind, 'use that here')} yet, so it leaves out \"{typed}\"."
