"""When each asset class trades: one calendar for everything that needs to know.

US stocks trade 09:30-16:00 New York time on weekdays (exchange holidays are ignored), forex
from Sunday 17:00 to Friday 17:00 New York time, crypto always. The simulator follows it,
ingestion exports it as a gauge the NoTrades alert reads, the first model waits for the last
open minute of a backfill, and the bot says when a market with no trades yet opens.
`market_hours="always"` (the simulator's LAKEWATCH_SIM_MARKET_HOURS) lets everything trade.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from lakewatch.settings import Settings

NEW_YORK = ZoneInfo("America/New_York")
MINUTE_MS = 60_000
SESSION_OPEN_MIN, SESSION_CLOSE_MIN = 9 * 60 + 30, 16 * 60  # New York local minutes
FOREX_ROLL_MIN = 17 * 60
# The longest a market stays closed: forex from Friday 17:00 to Sunday 17:00, stocks from
# Friday 16:00 to Monday 09:30.
LONGEST_CLOSE_MS = 66 * 3_600_000
# The calendar above in words, for the markets that close.
HOURS = {"stocks": "US stocks trade 09:30-16:00 New York time on weekdays",
         "forex": "forex trades from Sunday 17:00 to Friday 17:00 New York time"}


@dataclass(frozen=True)
class Clock:
    """What the market rules need to know about one minute."""
    ny_weekday: int  # Monday = 0
    ny_minute: int  # minutes since New York midnight
    ny_day: int  # proleptic ordinal of the New York date
    utc_day: int
    utc_hour: float  # at the middle of the minute


def clock(minute_ms: int) -> Clock:
    local = datetime.fromtimestamp(minute_ms / 1000, NEW_YORK)
    mid_s = minute_ms / 1000 + 30
    return Clock(local.weekday(), local.hour * 60 + local.minute, local.toordinal(),
                 int(mid_s // 86400), (mid_s % 86400) / 3600)


def is_open(asset_class: str, at: Clock, market_hours: str = "us") -> bool:
    if market_hours == "always" or asset_class == "crypto":
        return True
    if asset_class == "stocks":
        return at.ny_weekday < 5 and SESSION_OPEN_MIN <= at.ny_minute < SESSION_CLOSE_MIN
    weekday, minute = at.ny_weekday, at.ny_minute  # forex: Sunday 17:00 to Friday 17:00
    return not (weekday == 5 or (weekday == 4 and minute >= FOREX_ROLL_MIN)
                or (weekday == 6 and minute < FOREX_ROLL_MIN))


def hours_of(settings: Settings) -> str:
    """The calendar the data follows: Finnhub's is the real markets'; the simulator's is set."""
    return "us" if settings.uses_finnhub else settings.sim_market_hours


def market_open(asset_class: str, ms: int, market_hours: str = "us") -> bool:
    """Whether `asset_class` trades in the minute holding `ms` (epoch milliseconds)."""
    return is_open(asset_class, clock(ms - ms % MINUTE_MS), market_hours)


def next_open(asset_class: str, ms: int, market_hours: str = "us") -> int:
    """The start (epoch ms) of the first minute from the one holding `ms` in which it trades."""
    minute = ms - ms % MINUTE_MS
    # Every opening is on New York's hour or half hour, and New York is whole hours from UTC.
    step = 30 * MINUTE_MS
    while not market_open(asset_class, minute, market_hours):
        if minute - ms > LONGEST_CLOSE_MS:
            raise ValueError(f"{asset_class} does not open within {LONGEST_CLOSE_MS // 3_600_000} h of {ms}")
        minute = (minute // step + 1) * step
    return minute
