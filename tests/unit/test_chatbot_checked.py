"""The bot never answers a different question than the one asked: what a checked answer says about
the parts of a message it did not use, misspelt values it matched, and ambiguous ones; what a
follow-up carries over; and the SQL it shows, values filled in."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

import duckdb
import pytest

from chatbot.answers import Question, conversation
from chatbot.answers.checked import checked
from lakewatch import settings as settings_module
from lakewatch.sql import periods, queries
from lakewatch.sql.saved_queries import filled_in

SETTINGS = settings_module.load({})


def _question(text: str, found: list[dict]) -> Question:
    return Question(text=text, entities=found, settings=SETTINGS)


def _symbol_only(q: Question) -> str:
    q.uses("symbol")
    return "AAPL last traded at 110.00."


def test_an_entity_the_answer_did_not_use_is_named_as_left_out():
    text = "price of AAPL between 10:00 and 12:00"
    said = checked(_symbol_only, _question(text, [{"entity": "symbol", "value": "AAPL", "start": 9, "end": 13},
                                                  {"entity": "time_range", "value": "between 10:00 and 12:00",
                                                   "start": 14, "end": 37}]))
    assert said.text == ("I can't filter this answer by time of day yet, so it leaves out \"between 10:00 and 12:00\".\n"
                         "AAPL last traded at 110.00.")


def test_an_answer_that_used_every_entity_is_said_as_it_is():
    said = checked(_symbol_only, _question("price of AAPL", [{"entity": "symbol", "value": "AAPL"}]))
    assert said.text == "AAPL last traded at 110.00." and said.error is None


def test_a_second_period_is_named_as_left_out_when_the_answer_used_the_first():
    def one_window(q: Question) -> str:
        q.uses("period")
        return "3 anomalies today."

    said = checked(one_window, _question("anomalies today and yesterday", [
        {"entity": "period", "value": "today", "start": 10, "end": 15},
        {"entity": "period", "value": "yesterday", "start": 20, "end": 29}]))
    assert said.text == 'I answer for one period at a time, so this leaves out "yesterday".\n3 anomalies today.'


def test_a_misspelt_value_is_answered_with_how_it_was_read():
    said = checked(_symbol_only, _question("price of APPL", [{"entity": "symbol", "value": "AAPL", "start": 9,
                                                              "end": 13, "extractor": "FuzzyEntityExtractor"}]))
    assert said.text == '(Reading "APPL" as AAPL.) AAPL last traded at 110.00.'


def test_an_ambiguous_misspelling_is_asked_back_and_nothing_is_answered():
    def never(q):
        raise AssertionError("answered an ambiguous question")

    said = checked(never, _question("price of ethc", [{"entity": "symbol", "value": "ethc", "start": 9, "end": 13,
                                                       "extractor": "FuzzyEntityExtractor",
                                                       "candidates": ["BINANCE:ETHUSDT", "ETC"]}]))
    assert said.text == 'Did you mean BINANCE:ETHUSDT or ETC by "ethc"?' and not said.sql


def test_a_value_the_answer_cannot_use_is_refused_not_guessed():
    from chatbot.answers import anomalies

    said = checked(anomalies.count, _question("", [{"entity": "metric", "value": "median"}]))
    assert said.error == "not_understood" and "median" in said.text


@pytest.mark.parametrize("previous, new, expected", [
    # "and yesterday?": only the period changes
    ([{"entity": "asset_class", "value": "crypto"}, {"entity": "period", "value": "today"}],
     [{"entity": "period", "value": "yesterday"}],
     [{"entity": "asset_class", "value": "crypto"}, {"entity": "period", "value": "yesterday"}]),
    # "what about ETH?": a symbol replaces the asset class, the period stays
    ([{"entity": "asset_class", "value": "crypto"}, {"entity": "period", "value": "this week"}],
     [{"entity": "symbol", "value": "ETH"}],
     [{"entity": "period", "value": "this week"}, {"entity": "symbol", "value": "ETH"}]),
    # "only stocks": an asset class replaces the symbols
    ([{"entity": "symbol", "value": "AAPL"}, {"entity": "symbol", "value": "MSFT"}],
     [{"entity": "asset_class", "value": "stocks"}], [{"entity": "asset_class", "value": "stocks"}]),
])
def test_a_follow_up_changes_only_what_it_names(previous, new, expected):
    assert conversation.carried_over(previous, new) == expected


def test_the_conversation_remembers_kinds_and_values_not_how_they_were_typed():
    kept = conversation.remembered([{"entity": "asset_class", "value": "crypto", "start": 3, "end": 9,
                                     "extractor": "FuzzyEntityExtractor"},
                                    {"entity": "symbol", "value": "ethc", "candidates": ["A", "B"]}])
    assert kept == [{"entity": "asset_class", "value": "crypto"}]


def test_show_sql_without_an_earlier_answer_says_so():
    assert "not run any SQL" in conversation.sql_answer(None)


@pytest.mark.parametrize("dialect", ["duckdb", "trino"])
def test_the_sql_shown_has_typed_literals_and_quotes_escaped(dialect):
    now = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)
    text = filled_in(queries.top_movers(periods.today(now), ("AAPL", "O'X"), "stocks"), dialect)
    assert "IN ('AAPL', 'O''X')" in text and ":" not in text.replace("00:00:00", "")
    stamp = ("TIMESTAMP '2026-11-21 00:00:00.000000 UTC'" if dialect == "trino"
             else "TIMESTAMPTZ '2026-11-21 00:00:00.000000+00'")
    assert f"window_start >= {stamp}" in text


def test_the_sql_shown_runs_on_duckdb_and_counts_what_the_bot_counted():
    now = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)
    db = duckdb.connect()
    db.execute("CREATE SCHEMA market; CREATE TABLE market.anomalies (symbol VARCHAR, asset_class VARCHAR, "
               "window_start TIMESTAMPTZ, window_date DATE, is_anomaly BOOLEAN, episode_start TIMESTAMPTZ, "
               "anomaly_score DOUBLE)")
    db.execute("INSERT INTO market.anomalies VALUES ('BTC', 'crypto', '2026-11-21 10:30:00+00', '2026-11-21', true, "
               "'2026-11-21 10:30:00+00', 0.9), ('BTC', 'crypto', '2026-11-21 13:00:00+00', '2026-11-21', true, "
               "'2026-11-21 13:00:00+00', 0.8), ('ETH', 'crypto', '2026-11-20 10:30:00+00', '2026-11-20', true, "
               "'2026-11-20 10:30:00+00', 0.7)")
    window = periods.within_hours(periods.today(now), time(10), time(12), "UTC", "between 10:00 and 12:00 UTC")
    assert window.first_day == date(2026, 11, 21)
    sql = filled_in(queries.anomaly_count(window, "crypto"), "duckdb")
    assert db.execute(sql).fetchall() == [(1, 1)]
