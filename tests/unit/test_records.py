import pytest

from ingestion import records
from lakewatch import settings

S = settings.load({})


def test_trade_frame_flattens_to_one_record_per_trade_with_asset_class():
    frame = {"type": "trade", "data": [
        {"s": "AAPL", "p": 189.3, "t": 1700000000000, "v": 100, "c": ["1", "12"]},
        {"s": "BINANCE:BTCUSDT", "p": 65000.5, "t": 1700000000001, "v": 0.01},
    ]}
    rows = list(records.trades_from_frame(frame, S.asset_class_of, "finnhub", ingested_at=5))
    assert rows == [
        {"symbol": "AAPL", "asset_class": "stocks", "price": 189.3, "volume": 100, "trade_ts": 1700000000000,
         "conditions": ["1", "12"], "source": "finnhub", "ingested_at": 5},
        {"symbol": "BINANCE:BTCUSDT", "asset_class": "crypto", "price": 65000.5, "volume": 0.01,
         "trade_ts": 1700000000001, "conditions": [], "source": "finnhub", "ingested_at": 5},
    ]


def test_trade_with_bad_fields_is_forwarded_for_the_stream_to_reject():
    frame = {"type": "trade", "data": [{"s": "AAPL", "p": -1, "t": "soon"}]}
    (row,) = records.trades_from_frame(frame, S.asset_class_of, "finnhub")
    assert row["price"] == -1 and row["volume"] is None and row["trade_ts"] == "soon"


@pytest.mark.parametrize("frame", [{"type": "trade"}, {"type": "trade", "data": "x"}, {"type": "trade", "data": [1]}])
def test_structurally_broken_frame_raises_malformed(frame):
    with pytest.raises(records.MalformedFrame):
        list(records.trades_from_frame(frame, S.asset_class_of, "finnhub"))


def test_news_related_becomes_a_list_and_seconds_become_milliseconds():
    item = {"category": "company", "datetime": 1700000000, "headline": "h", "id": 7, "related": "AAPL,MSFT",
            "source": "s", "summary": "x", "url": "u", "image": ""}
    row = records.news_record(item, "finnhub")
    assert row["symbol"] == "AAPL" and row["related"] == ["AAPL", "MSFT"] and row["published_at"] == 1700000000000


def test_quote_and_fundamentals_keep_finnhub_values():
    q = records.quote_record("AAPL", "stocks", {"c": 10, "d": 1, "dp": 11.1, "h": 11, "l": 9, "o": 9.5, "pc": 9, "t": 1700000000}, "finnhub")
    assert (q["current"], q["prev_close"], q["quote_ts"]) == (10, 9, 1700000000000)
    f = records.fundamentals_record("AAPL", "metrics", {"metric": {"beta": 1.2}, "metricType": "all"}, "finnhub")
    assert f["data"] == {"beta": 1.2} and f["kind"] == "metrics"
