"""Parsing and validation of Kafka records, without Spark: the rules in spark/parse.py."""
import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from lakewatch import tables
from lakewatch.settings import load
from spark.parse import Parser, topic_specs

NOW_MS = 1_763_712_000_000
KAFKA_TS = datetime.fromtimestamp(NOW_MS / 1000, timezone.utc)
TRADE = {"symbol": "AAPL", "asset_class": "stocks", "price": 190.5, "volume": 10, "trade_ts": NOW_MS - 1000,
         "conditions": ["1"], "source": "test", "ingested_at": NOW_MS}
PARSER = Parser(topic_specs(load({})))


def batch(*records: tuple[str, str | None]) -> pa.Table:
    n = len(records)
    return pa.table({"topic": [t for t, _ in records], "partition": pa.array([0] * n, pa.int32()),
                     "offset": pa.array(range(n), pa.int64()), "key": ["AAPL"] * n, "value": [v for _, v in records],
                     "timestamp": pa.array([KAFKA_TS] * n, tables.TS)})


def reason_of(topic: str, value) -> str | None:
    text = value if value is None or isinstance(value, str) else json.dumps(value)
    rejects = PARSER.parse(batch((topic, text))).rejects
    return rejects["reason"][0].as_py() if len(rejects) else None


def test_a_valid_trade_becomes_one_typed_row():
    parsed = PARSER.parse(batch(("market.trades", json.dumps(TRADE))))
    assert len(parsed.rejects) == 0
    (row,) = parsed.rows["trades"].to_pylist()
    assert row["symbol"] == "AAPL" and row["price"] == 190.5 and row["volume"] == 10.0
    assert row["trade_ts"] == datetime.fromtimestamp((NOW_MS - 1000) / 1000, timezone.utc)
    assert row["trade_date"].isoformat() == "2025-11-21" and row["conditions"] == ["1"]
    assert (row["kafka_partition"], row["kafka_offset"]) == (0, 0)


@pytest.mark.parametrize("value, reason", [
    ("not json", "not a JSON object"),
    ("[1, 2]", "not a JSON object"),
    ("", "not a JSON object"),
    (None, "empty value"),
    ({**TRADE, "symbol": " "}, "missing symbol"),
    ({**TRADE, "asset_class": "bonds"}, "unknown asset_class: bonds"),
    ({**TRADE, "price": "abc"}, "price is not a number: abc"),
    ({k: v for k, v in TRADE.items() if k != "price"}, "missing price"),
    ({**TRADE, "price": -5}, "price must be positive and finite: -5.0"),
    ('{"symbol":"AAPL","asset_class":"stocks","price":1e400,"volume":1,"trade_ts":1}', "price must be positive and finite: inf"),
    ({**TRADE, "volume": -1}, "volume must be >= 0 and finite: -1.0"),
    ({**TRADE, "trade_ts": "soon"}, "trade_ts is not an integer of epoch milliseconds: soon"),
    ({**TRADE, "trade_ts": 9 * 10**15}, "trade_ts out of range: 9000000000000000"),
    ({**TRADE, "trade_ts": NOW_MS + 301_000}, "trade_ts is more than 300 s after the Kafka timestamp"),
    ({**TRADE, "trade_ts": NOW_MS - 367 * 86_400_000}, "trade_ts is more than 366 days before the Kafka timestamp"),
])
def test_a_malformed_trade_is_rejected_with_its_first_failing_check(value, reason):
    assert reason_of("market.trades", value) == reason


@pytest.mark.parametrize("topic, value, reason", [
    ("market.quotes", {"symbol": "AAPL", "asset_class": "stocks", "current": 0, "quote_ts": NOW_MS}, "current must be positive and finite: 0.0"),
    ("market.news", {"id": 1, "headline": "", "published_at": NOW_MS}, "missing headline"),
    ("market.news", {"headline": "h", "published_at": NOW_MS}, "missing id"),
    ("market.fundamentals", {"symbol": "AAPL", "kind": "metrics", "data": [1]}, "data is not an object"),
    ("market.fundamentals", {"symbol": "AAPL", "kind": "earnings", "data": {}}, "unknown kind: earnings"),
    ("market.labels", {"anomaly_id": "a", "symbol": "AAPL", "kind": "price_spike", "start_ts": 2, "end_ts": 1}, "end_ts before start_ts"),
    ("market.other", {"x": 1}, "unknown topic: market.other"),
])
def test_other_topics_reject_what_their_table_cannot_hold(topic, value, reason):
    assert reason_of(topic, value) == reason


def test_every_record_lands_once_in_its_table_or_in_rejects():
    records = [("market.trades", json.dumps(TRADE)), ("market.trades", "garbage"), ("market.other", "{}"),
               ("market.news", json.dumps({"id": 9, "headline": "h", "published_at": NOW_MS, "related": ["AAPL"]})),
               ("market.fundamentals", json.dumps({"symbol": "AAPL", "kind": "metrics", "data": {"beta": 1.2}})),
               ("market.labels", json.dumps({"anomaly_id": "a", "symbol": "AAPL", "kind": "frozen_feed", "start_ts": 1, "end_ts": 2}))]
    parsed = PARSER.parse(batch(*records))
    assert sum(len(t) for t in parsed.rows.values()) + len(parsed.rejects) == len(records)
    assert json.loads(parsed.rows["fundamentals"]["data"][0].as_py()) == {"beta": 1.2}
    assert parsed.rows["news"]["related"][0].as_py() == ["AAPL"]
    assert sorted(parsed.rejects["reason"].to_pylist()) == ["not a JSON object", "unknown topic: market.other"]


def test_trade_time_limits_are_inclusive_to_the_millisecond_and_the_date_is_utc():
    limit_ms = 366 * 86_400_000
    assert reason_of("market.trades", {**TRADE, "trade_ts": NOW_MS + 300_000}) is None
    assert reason_of("market.trades", {**TRADE, "trade_ts": NOW_MS + 300_001}) is not None
    assert reason_of("market.trades", {**TRADE, "trade_ts": NOW_MS - limit_ms}) is None
    assert reason_of("market.trades", {**TRADE, "trade_ts": NOW_MS - limit_ms - 1}) is not None
    last_ms_of_day = NOW_MS - NOW_MS % 86_400_000 - 1  # 23:59:59.999 UTC the day before
    row = PARSER.parse(batch(("market.trades", json.dumps({**TRADE, "trade_ts": last_ms_of_day})))).rows["trades"]
    assert row["trade_date"][0].as_py() == datetime.fromtimestamp(last_ms_of_day / 1000, timezone.utc).date()


def parsed_one(topic: str, value) -> tuple[list[dict], list[dict]]:
    """(valid rows of any table, rejects) of a single record."""
    text = value if value is None or isinstance(value, str) else json.dumps(value)
    parsed = PARSER.parse(batch((topic, text)))
    return [r for t in parsed.rows.values() for r in t.to_pylist()], parsed.rejects.to_pylist()


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BRK-B", "0700.HK", "^GSPC", "OANDA:EUR_USD", "FXCM:EUR/USD",
                                    "BINANCE:BTCUSDT", "COINBASE:BTC-USD", "IC MARKETS:1", "FOREX:401484347", "A" * 64])
def test_every_finnhub_symbol_form_is_accepted(symbol):
    assert reason_of("market.trades", {**TRADE, "symbol": symbol}) is None


@pytest.mark.parametrize("symbol", [" AAPL", "AAPL ", "AA PL", "AAPL\n", "AA\tPL", "AA\x00PL", 'AA"PL', "AA'PL",
                                    "<script>", "AAPL;DROP", "ÄPPL", "IC  MARKETS:1", "OANDA:EUR USD", "---", ":"])
def test_a_symbol_outside_finnhub_forms_is_rejected_quoted(symbol):
    assert reason_of("market.trades", {**TRADE, "symbol": symbol}) == (
        f"symbol has characters outside [A-Za-z0-9.:_/^-] or no letter or digit: {json.dumps(symbol, ensure_ascii=False)}")


def test_a_900k_symbol_goes_to_rejects_truncated_with_its_full_length():
    value = json.dumps({**TRADE, "symbol": "A" * 900_000})
    rows, (reject,) = parsed_one("market.trades", value)
    assert rows == []
    assert reject["reason"] == "symbol longer than 64 characters (900000)"
    assert reject["raw_value"] == value[:65_536] and reject["raw_length"] == len(value)


def test_a_10mb_record_is_not_parsed_and_its_reject_keeps_64_kib():
    value = '{"symbol": "' + "x" * 10_000_000 + '"}'
    _, (reject,) = parsed_one("market.trades", value)
    assert reject["reason"] == f"value larger than 1048576 bytes ({len(value)})"
    assert len(reject["raw_value"]) == 65_536 and reject["raw_length"] == len(value)


def test_a_reject_cut_inside_a_character_stays_valid_utf8():
    value = "é" * 40_000  # 80,000 bytes: byte 65,536 is the middle of a character
    _, (reject,) = parsed_one("market.trades", value)
    assert reject["raw_value"] == "é" * 32_768 and reject["raw_length"] == 80_000


def test_every_reject_notes_its_full_length_and_an_empty_value_has_none():
    assert parsed_one("market.trades", "garbage")[1][0]["raw_length"] == 7
    assert parsed_one("market.trades", None)[1][0]["raw_length"] is None


def test_a_reason_quotes_at_most_64_characters_of_a_bad_value():
    reason = reason_of("market.trades", {**TRADE, "asset_class": "b" * 100_000})
    assert reason == "unknown asset_class: " + "b" * 64 + "... (100000 characters)"
    assert reason_of("market.trades", {**TRADE, "price": "9" * 70 + "x"}).endswith("... (71 characters)")


def test_an_ingested_at_past_the_timestamp_range_is_rejected_not_a_crash():
    assert reason_of("market.trades", {**TRADE, "ingested_at": 9 * 10**18}) == "ingested_at out of range: 9000000000000000000"


@pytest.mark.parametrize("topic, value, reason", [
    ("market.trades", {**TRADE, "source": "s" * 65}, "source longer than 64 characters (65)"),
    ("market.trades", {**TRADE, "conditions": ["1"] * 17}, "conditions has more than 16 elements (17)"),
    ("market.trades", {**TRADE, "conditions": ["1", "c" * 17]}, "conditions has an element longer than 16 characters"),
    ("market.quotes", {"symbol": "AAPL ", "asset_class": "stocks", "current": 1, "quote_ts": NOW_MS},
     'symbol has characters outside [A-Za-z0-9.:_/^-] or no letter or digit: "AAPL "'),
    ("market.news", {"id": 1, "headline": "h" * 1025, "published_at": NOW_MS}, "headline longer than 1024 characters (1025)"),
    ("market.news", {"id": 1, "headline": "h", "summary": "s" * 16_385, "published_at": NOW_MS},
     "summary longer than 16384 characters (16385)"),
    ("market.news", {"id": 1, "headline": "h", "url": "u" * 2049, "published_at": NOW_MS}, "url longer than 2048 characters (2049)"),
    ("market.news", {"id": 1, "headline": "h", "image": "i" * 2049, "published_at": NOW_MS}, "image longer than 2048 characters (2049)"),
    ("market.news", {"id": 1, "headline": "h", "source": "p" * 257, "published_at": NOW_MS}, "source longer than 256 characters (257)"),
    ("market.news", {"id": 1, "headline": "h", "category": "c" * 65, "published_at": NOW_MS}, "category longer than 64 characters (65)"),
    ("market.news", {"id": 1, "headline": "h", "origin": "o" * 65, "published_at": NOW_MS}, "origin longer than 64 characters (65)"),
    ("market.news", {"id": 1, "headline": "h", "symbol": "A B", "published_at": NOW_MS},
     'symbol has characters outside [A-Za-z0-9.:_/^-] or no letter or digit: "A B"'),
    ("market.news", {"id": 1, "headline": "h", "related": ["AAPL"] * 101, "published_at": NOW_MS},
     "related has more than 100 elements (101)"),
    ("market.news", {"id": 1, "headline": "h", "related": ["R" * 65], "published_at": NOW_MS},
     "related has an element longer than 64 characters"),
    ("market.fundamentals", {"symbol": "AAPL", "asset_class": "bonds", "kind": "metrics", "data": {}}, "unknown asset_class: bonds"),
    ("market.fundamentals", {"symbol": "AAPL", "kind": "metrics", "data": {}, "source": "s" * 65}, "source longer than 64 characters (65)"),
    ("market.labels", {"anomaly_id": "a" * 129, "symbol": "AAPL", "kind": "k", "start_ts": 1, "end_ts": 2},
     "anomaly_id longer than 128 characters (129)"),
    ("market.labels", {"anomaly_id": "a", "symbol": "AAPL", "kind": "k" * 65, "start_ts": 1, "end_ts": 2},
     "kind longer than 64 characters (65)"),
])
def test_every_text_field_has_a_length_limit(topic, value, reason):
    assert reason_of(topic, value) == reason


def test_text_limits_count_characters_not_bytes():
    assert reason_of("market.news", {"id": 1, "headline": "é" * 1024, "published_at": NOW_MS}) is None


def test_market_news_without_a_symbol_is_still_accepted():
    rows, rejects = parsed_one("market.news", {"id": 1, "headline": "h", "published_at": NOW_MS, "symbol": None})
    assert rejects == [] and rows[0]["symbol"] is None
