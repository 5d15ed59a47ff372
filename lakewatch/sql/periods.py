"""Time windows in the day zone (UTC unless configured): the periods questions are asked in.

A window is half-open, [start, end), and carries the words that say which window an answer used.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    label: str

    @property
    def dates(self) -> tuple[date, date]:
        """First and last UTC date the window touches (for partition pruning)."""
        utc = ZoneInfo("UTC")
        return self.start.astimezone(utc).date(), (self.end - timedelta(microseconds=1)).astimezone(utc).date()


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def today(now: datetime, zone: str = "UTC") -> Window:
    z = ZoneInfo(zone)
    start = _midnight(now.astimezone(z).date(), z)
    return Window(start, start + timedelta(days=1), f"today ({start:%Y-%m-%d} {zone})")


def yesterday(now: datetime, zone: str = "UTC") -> Window:
    z = ZoneInfo(zone)
    start = _midnight(now.astimezone(z).date() - timedelta(days=1), z)
    return Window(start, start + timedelta(days=1), f"yesterday ({start:%Y-%m-%d} {zone})")


def this_week(now: datetime, zone: str = "UTC") -> Window:
    z = ZoneInfo(zone)
    day = now.astimezone(z).date()
    start = _midnight(day - timedelta(days=day.weekday()), z)
    return Window(start, now, f"this week (since Monday {start:%Y-%m-%d} {zone})")


def since(day: date, now: datetime, zone: str = "UTC") -> Window:
    z = ZoneInfo(zone)
    return Window(_midnight(day, z), now, f"since {day:%Y-%m-%d} {zone}")


def this_month(now: datetime, zone: str = "UTC") -> Window:
    z = ZoneInfo(zone)
    start = _midnight(now.astimezone(z).date().replace(day=1), z)
    return Window(start, now, f"this month (since {start:%Y-%m-%d} {zone})")


UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


def last(now: datetime, amount: int, unit: str) -> Window:
    """The last `amount` minutes, hours, days or weeks up to now."""
    start = now - timedelta(seconds=amount * UNIT_SECONDS[unit])
    words = f"the last {unit}" if amount == 1 else f"the last {amount} {unit}s"
    return Window(start, now, f"{words} (since {start.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC)")
