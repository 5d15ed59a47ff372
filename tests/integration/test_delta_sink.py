"""The stream's Delta writer (spark/delta_sink.py) on a real Spark with delta-spark: exactly-once
commits across a restart, and lakes written before a column joined a table's contract."""
import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakewatch import tables
from lakewatch.settings import load
from spark.delta_sink import DeltaSink, last_batch
from spark.parse import topic_specs
from tests.unit.test_parse import PARSER, TRADE, batch

pytestmark = pytest.mark.integration
OLD_REJECTS = pa.schema([f for f in tables.REJECTS.schema if f.name != "raw_length"])  # before issue 17


NEVER = 3600.0  # a merge period no test lasts: bars merge only on flush(), or not at all (a crash)


def sink_for(spark, lake_dir, query="test-query") -> DeltaSink:
    sink = DeltaSink(spark, lake_dir, topic_specs(load({})), watermark_delay_s=10, bars_merge_seconds=NEVER)
    sink.start(query)
    return sink


def rows(lake_dir, table) -> list[dict]:
    return DeltaTable(str(table.path(lake_dir))).to_pyarrow_table().to_pylist()


def test_a_rejects_table_from_before_raw_length_gains_the_column_and_keeps_its_rows(spark, tmp_path):
    path = tables.REJECTS.path(tmp_path)
    path.mkdir(parents=True)
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    old_row = {"topic": "market.trades", "kafka_partition": 0, "kafka_offset": 0, "key": "AAPL", "raw_value": "x",
               "reason": "not a JSON object", "kafka_ts": at, "rejected_at": at}
    write_deltalake(str(path), pa.Table.from_pylist([old_row], schema=OLD_REJECTS), mode="append")

    sink = sink_for(spark, tmp_path)
    oversized = json.dumps({**TRADE, "symbol": "A" * 900})
    for batch_id, value in enumerate(["garbage", oversized]):
        sink.write(PARSER.parse(batch(("market.trades", json.dumps(TRADE)), ("market.trades", value))), batch_id)
    sink.flush()

    found = sorted(rows(tmp_path, tables.REJECTS), key=lambda r: r["rejected_at"])
    assert [(r["reason"], r["raw_length"]) for r in found] == [
        ("not a JSON object", None), ("not a JSON object", 7), ("symbol longer than 64 characters (900)", len(oversized))]
    assert len(rows(tmp_path, tables.TRADES)) == 2


def test_a_batch_written_again_after_a_restart_lands_once_in_every_table(spark, tmp_path):
    parsed = PARSER.parse(batch(("market.trades", json.dumps(TRADE)), ("market.trades", "garbage")))
    first = sink_for(spark, tmp_path)
    first.write(parsed, 0)
    first.flush()
    assert last_batch(tables.TRADES.path(tmp_path), "test-query") == 0

    again = sink_for(spark, tmp_path)  # a restart: what was committed is read back from the tables
    assert again.watermarks and again.written == {"trades": 0, "rejects": 0, "bars_1m": 0}
    again.write(parsed, 0)
    again.write(PARSER.parse(batch(("market.trades", json.dumps({**TRADE, "price": 2.0})))), 1)
    again.flush()

    assert len(rows(tmp_path, tables.TRADES)) == 2 and len(rows(tmp_path, tables.REJECTS)) == 1
    (bar,) = rows(tmp_path, tables.BARS_1M)
    assert bar["trade_count"] == 2 and bar["close"] == 2.0


def test_bars_of_trades_committed_before_a_crash_are_merged_once_at_the_restart(spark, tmp_path):
    def trade_batch(batch_id: int, price: float):  # one trade a batch, each 10 ms after the last
        return PARSER.parse(batch(("market.trades", json.dumps(
            {**TRADE, "price": price, "trade_ts": TRADE["trade_ts"] + 10 * batch_id}))))

    crashed = sink_for(spark, tmp_path)
    for batch_id, price in enumerate([1.0, 3.0, 2.0]):
        crashed.write(trade_batch(batch_id, price), batch_id)
    crashed.flush()  # bars up to batch 2 merged; the next two batches' bars never are
    for batch_id, price in [(3, 5.0), (4, 4.0)]:
        crashed.write(trade_batch(batch_id, price), batch_id)
    assert rows(tmp_path, tables.BARS_1M)[0]["trade_count"] == 3

    again = sink_for(spark, tmp_path)
    assert again.written["bars_1m"] == 4 and again.watermarks == crashed.watermarks
    again.write(trade_batch(4, 4.0), 4)  # Spark's replay of the batch it had not recorded
    again.flush()
    (bar,) = rows(tmp_path, tables.BARS_1M)
    assert (bar["trade_count"], bar["open"], bar["high"], bar["close"]) == (5, 1.0, 5.0, 4.0)
    assert tables.bar_watermarks(DeltaTable(str(tables.BARS_1M.path(tmp_path))), 10) == crashed.watermarks


def test_another_query_on_the_same_lake_is_not_taken_for_this_one(spark, tmp_path):
    parsed = PARSER.parse(batch(("market.trades", json.dumps(TRADE))))
    for query in ("first", "second"):  # a new checkpoint: a deliberate re-ingest
        sink = sink_for(spark, tmp_path, query)
        sink.write(parsed, 0)
        sink.flush()
    assert len(rows(tmp_path, tables.TRADES)) == 2
    assert rows(tmp_path, tables.BARS_1M)[0]["trade_count"] == 2
