"""The one market calendar (lakewatch/markets.py): when each class trades and when a closed
one opens, which the simulator, ingestion's gauge and the bot all read."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lakewatch import markets, settings as settings_module


def ms(*args, zone=markets.NEW_YORK) -> int:
    return int(datetime(*args, tzinfo=zone).timestamp() * 1000)


@pytest.mark.parametrize("asset_class, at, opens", [
    # Saturday noon in New York: stocks open on Monday at 09:30, forex on Sunday at 17:00.
    ("stocks", ms(2026, 12, 5, 12, 0), ms(2026, 12, 7, 9, 30)),
    ("forex", ms(2026, 12, 5, 12, 0), ms(2026, 12, 6, 17, 0)),
    # A weekday before the bell, and after it: today's 09:30, then tomorrow's.
    ("stocks", ms(2026, 12, 8, 9, 29, 59), ms(2026, 12, 8, 9, 30)),
    ("stocks", ms(2026, 12, 8, 16, 0), ms(2026, 12, 9, 9, 30)),
    # Friday after 17:00: forex opens again on Sunday.
    ("forex", ms(2026, 12, 11, 17, 0), ms(2026, 12, 13, 17, 0)),
])
def test_a_closed_market_opens_at_its_next_session(asset_class, at, opens):
    assert not markets.market_open(asset_class, at)
    assert markets.next_open(asset_class, at) == opens
    assert markets.market_open(asset_class, opens)


def test_an_open_market_opens_in_the_minute_asked_about():
    at = ms(2026, 12, 8, 11, 15, 42)
    assert markets.next_open("stocks", at) == ms(2026, 12, 8, 11, 15)
    assert markets.next_open("crypto", ms(2026, 12, 5, 3, 0, 7)) == ms(2026, 12, 5, 3, 0)
    assert markets.next_open("stocks", ms(2026, 12, 5, 3, 0), "always") == ms(2026, 12, 5, 3, 0)


def test_the_calendar_follows_new_york_summer_time():
    # 09:30 New York is 13:30 UTC in July and 14:30 UTC in December.
    assert markets.next_open("stocks", ms(2026, 7, 4, 12, 0)) == ms(2026, 7, 6, 13, 30, zone=timezone.utc)
    assert markets.next_open("stocks", ms(2026, 12, 5, 12, 0)) == ms(2026, 12, 7, 14, 30, zone=timezone.utc)


def test_finnhub_data_follows_the_real_markets_and_the_simulator_its_setting():
    assert markets.hours_of(settings_module.load({"LAKEWATCH_SIM_MARKET_HOURS": "always"})) == "always"
    assert markets.hours_of(settings_module.load({"LAKEWATCH_SIM_MARKET_HOURS": "always",
                                                      "FINNHUB_API_KEY": "k" * 20})) == "us"
