"""The periods questions are asked in (today, yesterday, this week, the last hour, ...), each defined once.

A period is two marks relative to the clock: a midnight in the day zone (of today, of the Monday
starting this week, of the first of the month, of a given date, shifted by whole days) or "now"
less some minutes or hours. Each mark is computed two ways from that one definition:

- `Period.at(now, zone)`: a `Window` of concrete datetimes, for the bot (bound parameters, and
  words that name the dates it used);
- `Period.in_sql()`: a `SqlWindow` of SQL expressions on the session's clock (`current_date`,
  `current_timestamp`), for saved queries that must stay right every day. SQL sessions run in
  the day zone (settings.day_timezone), so a date cast to a timestamp is that zone's midnight.

Windows are half-open, [start, end). tests/unit/test_periods.py runs both computations side by
side on DuckDB, around midnights, Mondays and daylight-saving changes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

TIMESTAMPTZ = sa.TIMESTAMP(timezone=True)
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_UTC = ZoneInfo("UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
BAR = timedelta(minutes=1)  # the grain of the bot's windows: the lake's bars


def _interval(amount: int, unit: str) -> sa.ColumnElement:
    return sa.literal_column(f"INTERVAL '{amount}' {unit.upper()}", sa.Interval)


@dataclass(frozen=True, eq=False)
class SqlClock:
    """What `now` and `today` are in SQL: the session's clock, or a fixed instant in tests."""
    now: sa.ColumnElement
    today: sa.ColumnElement


SESSION_CLOCK = SqlClock(sa.func.current_timestamp(), sa.func.current_date())


@dataclass(frozen=True)
class Midnight:
    """00:00 in the day zone, `days` after the first day of the current day, week (weeks start on
    Monday) or month, or after a given date."""
    of: str | date = "day"
    days: int = 0

    def day(self, today: date) -> date:
        if isinstance(self.of, date):
            first = self.of
        else:
            first = {"day": today, "week": today - timedelta(days=today.weekday()),
                     "month": today.replace(day=1)}[self.of]
        return first + timedelta(days=self.days)

    def at(self, now: datetime, zone: ZoneInfo) -> datetime:
        return datetime.combine(self.day(now.astimezone(zone).date()), time.min, tzinfo=zone)

    def day_sql(self, clock: SqlClock) -> sa.ColumnElement:
        if isinstance(self.of, date):
            first = sa.literal(self.of, sa.Date)
        else:
            first = clock.today if self.of == "day" else sa.func.date_trunc(self.of, clock.today)
        # Whole days are added to dates, never to timestamps: a day is 23 or 25 hours when the
        # clocks change, and the engines need not agree on adding a day to a timestamp then.
        if self.days > 0:
            return first + _interval(self.days, "day")
        return first - _interval(-self.days, "day") if self.days else first

    def sql(self, clock: SqlClock) -> sa.ColumnElement:
        return sa.cast(self.day_sql(clock), TIMESTAMPTZ)


@dataclass(frozen=True)
class Ago:
    """`amount` minutes, hours, days or weeks before now, counted in seconds (a day is 24 hours)."""
    amount: int = 0
    unit: str = "hour"

    def at(self, now: datetime, zone: ZoneInfo) -> datetime:
        return now - timedelta(seconds=self.amount * UNIT_SECONDS[self.unit])

    def day_sql(self, clock: SqlClock) -> sa.ColumnElement:
        return sa.cast(self.sql(clock), sa.Date)

    def sql(self, clock: SqlClock) -> sa.ColumnElement:
        if not self.amount:
            return clock.now
        # Hours, not days: DuckDB adds a calendar day (23 or 25 hours when the clocks change), and a
        # day here is 24 hours, as in Python.
        minutes = self.unit == "minute"
        amount = self.amount if minutes else self.amount * UNIT_SECONDS[self.unit] // 3600
        return clock.now - _interval(amount, "minute" if minutes else "hour")


NOW = Ago()


@dataclass(frozen=True)
class Window:
    """A period computed at one instant: concrete datetimes, bound as parameters."""
    start: datetime
    end: datetime
    label: str
    first_day: date  # in the day zone: the date a period starting at a midnight is of
    # Stretches of the window that count, when only some hours of each day do (see within_hours).
    stretches: tuple[tuple[datetime, datetime], ...] | None = None

    @property
    def dates(self) -> tuple[date, date]:
        """First and last UTC date the window touches (for partition pruning)."""
        return self.start.astimezone(_UTC).date(), (self.end - timedelta(microseconds=1)).astimezone(_UTC).date()

    def covers(self, instant: sa.ColumnElement, utc_date: sa.ColumnElement | None = None) -> list:
        """The conditions for `instant` in the window; with the table's UTC date partition column,
        also the dates to read, so the engine skips the other partitions."""
        within = [instant >= self.start, instant < self.end]
        if self.stretches is not None and len(self.stretches) > 1:  # one stretch is the bounds themselves
            within.append(sa.or_(*(sa.and_(instant >= a, instant < b) for a, b in self.stretches)))
        if utc_date is None:
            return within
        first, last = self.dates
        return [utc_date >= first, utc_date <= last, *within]


@dataclass(frozen=True, eq=False)
class SqlWindow:
    """A period as SQL on a clock: the same rows whichever day the query runs."""
    start: sa.ColumnElement
    end: sa.ColumnElement
    first_day: sa.ColumnElement

    def covers(self, instant: sa.ColumnElement, utc_date: sa.ColumnElement | None = None) -> list:
        # No partition bounds: the UTC dates of the day zone's midnights would double the SQL
        # SQL Lab's readers follow, to save reading a few small partitions of one week.
        return [instant >= self.start, instant < self.end]


@dataclass(frozen=True)
class Period:
    """Two marks relative to the clock, and the words that name the window they make."""
    start: Midnight | Ago
    end: Midnight | Ago
    label: str  # str.format'ed with start (in the zone), start_utc and zone

    def at(self, now: datetime, zone: str = "UTC", grain: timedelta | None = None) -> Window:
        """The window at `now`. With a `grain`, marks relative to now count from now rounded up
        to a whole grain: the bot's windows (grain BAR) end after the bar in progress, and are the
        same SQL until the next bar begins, so a question asked again of an unchanged lake is
        answered from the bot's results (chatbot/answers/lake.py)."""
        z = ZoneInfo(zone)
        later = now + (-(now - _EPOCH)) % grain if grain else now
        start, end = (mark.at(later if isinstance(mark, Ago) else now, z) for mark in (self.start, self.end))
        label = self.label.format(start=start, start_utc=start.astimezone(_UTC), zone=zone)
        return Window(start, end, label, start.astimezone(z).date())

    def in_sql(self, clock: SqlClock = SESSION_CLOCK) -> SqlWindow:
        return SqlWindow(self.start.sql(clock), self.end.sql(clock), self.start.day_sql(clock))


TODAY = Period(Midnight("day"), Midnight("day", 1), "today ({start:%Y-%m-%d} {zone})")
YESTERDAY = Period(Midnight("day", -1), Midnight("day"), "yesterday ({start:%Y-%m-%d} {zone})")
THIS_WEEK = Period(Midnight("week"), NOW, "this week (since Monday {start:%Y-%m-%d} {zone})")
THIS_MONTH = Period(Midnight("month"), NOW, "this month (since {start:%Y-%m-%d} {zone})")


def the_last(amount: int, unit: str) -> Period:
    """The last `amount` minutes, hours, days or weeks up to now."""
    words = f"the last {unit}" if amount == 1 else f"the last {amount} {unit}s"
    return Period(Ago(amount, unit), NOW, words + " (since {start_utc:%Y-%m-%d %H:%M} UTC)")


def since_day(day: date) -> Period:
    return Period(Midnight(day), NOW, "since {start:%Y-%m-%d} {zone}")


def between_days(first: date, last: date) -> Period:
    """From the first day's midnight to the midnight after the last day (both in the day zone)."""
    return Period(Midnight(first), Midnight(last, 1), f"from {first:%a %Y-%m-%d} to {last:%a %Y-%m-%d} {{zone}}")


def within_hours(window: Window, start: time, end: time, zone: str, words: str) -> Window:
    """The window cut to the same stretch of each day it covers, from `start` to `end` o'clock
    in `zone` (which need not be the day zone: the US stock market opens at 09:30 New York time).
    `words` name the stretch in the label. A stretch that has not begun yet is empty."""
    z = ZoneInfo(zone)
    day, last = window.start.astimezone(z).date(), (window.end - timedelta(microseconds=1)).astimezone(z).date()
    stretches = []
    while day <= last:
        a = max(datetime.combine(day, start, tzinfo=z), window.start)
        b = min(datetime.combine(day, end, tzinfo=z), window.end)
        if a < b:
            stretches.append((a, b))
        day += timedelta(days=1)
    # The outer bounds shrink to the stretches, so the engine reads only the partitions they touch.
    bounds = (stretches[0][0], stretches[-1][1]) if stretches else (window.start, window.start)
    return replace(window, start=bounds[0], end=bounds[1], label=f"{window.label}, {words}",
                   stretches=tuple(stretches))


# The bot's spellings: each period at an instant, to the bar.

def today(now: datetime, zone: str = "UTC") -> Window:
    return TODAY.at(now, zone, BAR)


def yesterday(now: datetime, zone: str = "UTC") -> Window:
    return YESTERDAY.at(now, zone, BAR)


def this_week(now: datetime, zone: str = "UTC") -> Window:
    return THIS_WEEK.at(now, zone, BAR)


def this_month(now: datetime, zone: str = "UTC") -> Window:
    return THIS_MONTH.at(now, zone, BAR)


def since(day: date, now: datetime, zone: str = "UTC") -> Window:
    return since_day(day).at(now, zone, BAR)


def last(now: datetime, amount: int, unit: str) -> Window:
    """The last `amount` minutes, hours, days or weeks up to now."""
    return the_last(amount, unit).at(now, grain=BAR)
