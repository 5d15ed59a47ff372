"""The bot's results are kept by SQL and table versions (chatbot/answers/lake.py): a question
asked again of an unchanged lake skips the engine, and never gets an answer older than the lake."""
from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from chatbot.answers import Question, lake, prices
from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.sql import periods, queries, views
from testkit.known_lake import anomaly, write

NOW = datetime.now(timezone.utc)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAKEWATCH_SQL_ENGINE", "duckdb")
    found = settings_module.load()
    tables.ensure(found.lake_dir)
    write(found.lake_dir, tables.ANOMALIES, [anomaly("AAPL", "stocks", NOW - timedelta(minutes=5))])
    return found


def _hits() -> float:
    return lake.CACHED.labels("hit")._value.get()


def _count(settings) -> int:
    (row,) = lake.rows(settings, "anomaly_count", queries.anomaly_count(periods.today(NOW), "stocks"))
    return row["anomalies"]


def test_a_question_asked_again_of_an_unchanged_lake_is_answered_without_the_engine(settings):
    first = _count(settings)
    hits = _hits()
    assert _count(settings) == first == 1
    assert _hits() == hits + 1


def test_a_commit_to_a_table_the_query_reads_gives_a_fresh_answer(settings):
    assert _count(settings) == 1
    write(settings.lake_dir, tables.ANOMALIES, [anomaly("MSFT", "stocks", NOW - timedelta(minutes=3))])
    hits = _hits()
    assert _count(settings) == 2
    assert _hits() == hits


def test_a_query_over_a_view_or_the_clock_is_never_kept(settings):
    def key(sql, query):
        return lake._cache_key(settings, sql, lake._versions(settings, query))

    anomalies = sa.table("anomalies", schema="market")
    over_view = sa.select(sa.literal(1)).select_from(queries.stored_view(views.VIEWS[0].name))
    assert key("SELECT 1 FROM market.a_view", over_view) is None
    assert key("SELECT current_date FROM market.anomalies", sa.select(sa.func.current_date()).select_from(anomalies)) is None
    assert key("SELECT 1 FROM market.anomalies", sa.select(sa.literal(1)).select_from(anomalies)) is not None


def test_a_lake_table_not_written_yet_is_named_instead_of_querying_it(settings):
    shutil.rmtree(tables.NEWS.path(settings.lake_dir))  # a lake that has had no news yet
    with pytest.raises(lake.NoDataYet, match="^news$"):
        lake.rows(settings, "recent_news", queries.recent_news("AAPL", 3))
    assert _count(settings) == 1  # the table that is there answers


def test_askers_of_a_query_already_running_wait_for_it_instead_of_running_it_again():
    results = lake._Results(8)
    started, release, runs = threading.Event(), threading.Event(), []

    def run():
        runs.append(1)
        started.set()
        release.wait(5)
        return ({"n": 1},)

    answers = []
    first = threading.Thread(target=lambda: answers.append(results.get_or_run("k", run)))
    first.start()
    started.wait(5)
    others = [threading.Thread(target=lambda: answers.append(results.get_or_run("k", run))) for _ in range(5)]
    for t in others:
        t.start()
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert len(runs) == 1
    assert sorted(hit for _, hit in answers) == [False] + [True] * 5
    assert all(found == ({"n": 1},) for found, _ in answers)


def test_a_failed_query_fails_its_waiters_too_and_is_not_kept():
    results = lake._Results(8)

    def broken():
        raise RuntimeError("engine down")

    with pytest.raises(RuntimeError, match="engine down"):
        results.get_or_run("k", broken)
    assert results.get_or_run("k", lambda: ("fine",)) == (("fine",), False)
    assert results.get_or_run("k", lambda: ("other",)) == (("fine",), True)


def test_only_the_newest_results_are_kept():
    results = lake._Results(2)
    for key in "abc":
        results.get_or_run(key, lambda key=key: (key,))
    assert results.get_or_run("a", lambda: ("again",)) == (("again",), False)
    assert results.get_or_run("c", lambda: ("x",)) == (("c",), True)


SATURDAY = datetime(2026, 12, 5, 17, 0, tzinfo=timezone.utc)


def test_a_symbol_with_no_trades_while_its_market_is_closed_is_told_when_it_opens(settings):
    asked = prices.latest(Question("what is AAPL at", entities=[{"entity": "symbol", "value": "AAPL"}],
                                   now=SATURDAY, settings=settings))
    assert asked == ("AAPL has no trades in the lake yet. Its market is closed: US stocks trade 09:30-16:00 "
                     "New York time on weekdays; it opens at 2026-12-07 14:30 UTC.")
    # Crypto never closes: no trades there is only that.
    asked = prices.latest(Question("what is BTC at", entities=[{"entity": "symbol", "value": "BINANCE:BTCUSDT"}],
                                   now=SATURDAY, settings=settings))
    assert asked == "BINANCE:BTCUSDT has no trades in the lake yet."
