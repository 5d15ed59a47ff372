"""A lake written before a column joined a table's contract keeps taking writes (spark/delta_sink.py)."""
import json
from datetime import datetime, timezone

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lakewatch import tables
from lakewatch.settings import load
from spark.delta_sink import DeltaSink
from spark.parse import topic_specs
from tests.unit.test_parse import PARSER, TRADE, batch

OLD_REJECTS = pa.schema([f for f in tables.REJECTS.schema if f.name != "raw_length"])  # before issue 17


def test_a_rejects_table_from_before_raw_length_gains_the_column_and_keeps_its_rows(tmp_path):
    path = tables.REJECTS.path(tmp_path)
    path.mkdir(parents=True)
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    old_row = {"topic": "market.trades", "kafka_partition": 0, "kafka_offset": 0, "key": "AAPL", "raw_value": "x",
               "reason": "not a JSON object", "kafka_ts": at, "rejected_at": at}
    write_deltalake(str(path), pa.Table.from_pylist([old_row], schema=OLD_REJECTS), mode="append")

    sink = DeltaSink(tmp_path, "test-app", topic_specs(load({})), watermark_delay_s=10)
    oversized = json.dumps({**TRADE, "symbol": "A" * 900})
    for batch_id, value in enumerate(["garbage", oversized]):
        sink.write(PARSER.parse(batch(("market.trades", json.dumps(TRADE)), ("market.trades", value))), batch_id)

    rows = sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: r["rejected_at"])
    assert [(r["reason"], r["raw_length"]) for r in rows] == [
        ("not a JSON object", None), ("not a JSON object", 7), ("symbol longer than 64 characters (900)", len(oversized))]
    assert DeltaTable(str(tables.TRADES.path(tmp_path))).to_pyarrow_table().num_rows == 2
