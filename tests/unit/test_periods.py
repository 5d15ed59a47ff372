"""Each period is computed two ways from its one definition (lakewatch/sql/periods.py): in Python at
an instant, for the bot, and in SQL on the session's clock, for saved queries. Here both run at
the same instants, in the SQL session's time zone, on DuckDB: they must give the same window
around midnights, Mondays, month starts and daylight-saving changes, in zones either side of UTC.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest
import sqlalchemy as sa

from lakewatch.sql import periods, views

PERIODS = {
    "today": periods.TODAY, "yesterday": periods.YESTERDAY, "this week": periods.THIS_WEEK,
    "this month": periods.THIS_MONTH, "the last 30 minutes": periods.the_last(30, "minute"),
    "the last hour": periods.the_last(1, "hour"), "the last 2 days": periods.the_last(2, "day"),
    "the last week": periods.the_last(1, "week"), "since 2026-03-01": periods.since_day(date(2026, 3, 1)),
}
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
LOCAL_INSTANTS = (
    datetime(2026, 11, 23, 0, 0, 30),  # a Monday, just after midnight
    datetime(2026, 11, 29, 23, 59, 30),  # the Sunday ending that week, just before midnight
    datetime(2026, 12, 1, 0, 0),  # the first of a month, at midnight
    datetime(2026, 3, 29, 12, 0),  # the spring change in Europe (a 23-hour Sunday)
    datetime(2026, 3, 30, 0, 30),  # the Monday after it
    datetime(2026, 10, 25, 23, 30),  # the autumn change in Europe (a 25-hour Sunday)
    datetime(2026, 11, 2, 0, 30),  # the Monday after the autumn change in America
)


def frozen_clock(instant: datetime) -> periods.SqlClock:
    """The session's clock stopped at `instant`: what current_timestamp and current_date would be."""
    now = sa.literal_column(f"CAST('{instant.isoformat()}' AS TIMESTAMP WITH TIME ZONE)", periods.TIMESTAMPTZ)
    return periods.SqlClock(now, sa.cast(now, sa.Date))


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    yield con
    con.close()


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("name", PERIODS)
def test_a_period_in_sql_is_the_period_in_python(duck, name, zone):
    duck.execute(f"SET TimeZone = '{zone}'")
    for local in LOCAL_INSTANTS:
        now = local.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
        window, in_sql = PERIODS[name].at(now, zone), PERIODS[name].in_sql(frozen_clock(now))
        # DuckDB's date minus an interval is a timestamp at midnight: the same day, compared with a date
        day = sa.cast(in_sql.first_day, sa.Date)
        query = sa.select(in_sql.start.label("start"), in_sql.end.label("end"), day.label("day"))
        text = str(query.compile(dialect=views.dialect("duckdb"), compile_kwargs={"literal_binds": True}))
        start, end, day = duck.execute(text).fetchone()
        assert (start, end, day) == (window.start, window.end, window.first_day), (name, zone, local)


def test_this_week_starts_on_the_monday_of_the_day_zone():
    monday_night = datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc)  # Monday 08:30 in Tokyo
    assert periods.this_week(monday_night, "Asia/Tokyo").start == datetime(2026, 11, 23, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert periods.this_week(monday_night, "UTC").start == datetime(2026, 11, 16, tzinfo=timezone.utc)


def test_the_bots_windows_that_end_now_end_after_the_bar_in_progress():
    late = datetime(2026, 12, 6, 23, 59, 30, 123, tzinfo=timezone.utc)  # a Sunday, 30 s before midnight
    hour = periods.last(late, 1, "hour")
    assert (hour.start, hour.end) == (datetime(2026, 12, 6, 23, tzinfo=timezone.utc),
                                      datetime(2026, 12, 7, tzinfo=timezone.utc))
    # Midnights are the day's, not the rounded minute's: still Sunday's day and week.
    assert periods.today(late).start == datetime(2026, 12, 6, tzinfo=timezone.utc)
    assert periods.this_week(late).start == datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert periods.this_week(late).end == datetime(2026, 12, 7, tzinfo=timezone.utc)
    on_the_minute = datetime(2026, 12, 6, 10, 5, tzinfo=timezone.utc)
    assert periods.last(on_the_minute, 15, "minute").end == on_the_minute
    # The same SQL for every question asked within the minute.
    assert periods.last(late, 6, "hour") == periods.last(late.replace(second=1), 6, "hour")


def test_the_session_clock_reads_as_the_engines_spell_it():
    window = periods.THIS_WEEK.in_sql()
    text = str(sa.select(window.start, window.end).compile(dialect=views.dialect("trino"),
                                                          compile_kwargs={"literal_binds": True}))
    assert "CAST(date_trunc('week', CURRENT_DATE) AS TIMESTAMP WITH TIME ZONE)" in text
    assert "CURRENT_TIMESTAMP" in text
