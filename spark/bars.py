"""1-minute OHLCV bars by event time, with a watermark that decides when a bar is final.

Bars live in Delta (`bars_1m`), not in Spark's state store: each micro-batch aggregates its
own trades into partial bars and merges them into the table, so a bar that receives trades in
several batches ends up exactly as if all its trades had come at once (open = earliest trade,
close = latest, ties broken by Kafka offset, which within a symbol is arrival order).

Each symbol has a watermark: the largest event time seen for it minus `bar_watermark_seconds`.
Per symbol, because a symbol's trades sit in one Kafka partition in arrival order, while
partitions advance unevenly (a backlog read in rate-limited batches ends each batch at a
different event time per partition): a global watermark would call on-time trades late.
A trade older than its symbol's watermark is *late*: it is stored in `trades` with
in_bar = false and counted (lakewatch_stream_late_trades_total), but it no longer changes its
bar, which downstream consumers (the scorer) may already have treated as final. The
watermarks are saved in the metadata of every bars commit, so a restarted job resumes with
exactly the same ones.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakewatch import tables

_AGGREGATE = """
WITH gaps AS (
    SELECT *, epoch_us(trade_ts) - epoch_us(lag(trade_ts) OVER (
                  PARTITION BY symbol, time_bucket(INTERVAL 1 MINUTE, trade_ts) ORDER BY trade_ts, kafka_offset)) AS gap_us
    FROM trades
)
SELECT symbol,
       any_value(asset_class) AS asset_class,
       time_bucket(INTERVAL 1 MINUTE, trade_ts) AS window_start,
       time_bucket(INTERVAL 1 MINUTE, trade_ts) + INTERVAL 1 MINUTE AS window_end,
       arg_min(price, (trade_ts, kafka_offset)) AS open,
       max(price) AS high,
       min(price) AS low,
       arg_max(price, (trade_ts, kafka_offset)) AS close,
       sum(volume) AS volume,
       CASE WHEN sum(volume) > 0 THEN sum(price * volume) / sum(volume) END AS vwap,
       count(*) AS trade_count,
       sum(price * volume) AS notional,
       min(trade_ts) AS first_trade_ts,
       max(trade_ts) AS last_trade_ts,
       now() AS updated_at,
       coalesce(max(gap_us), 0) / 1e6 AS longest_silence_s,
       coalesce(arg_max(trade_ts, gap_us), min(trade_ts)) AS longest_silence_end
FROM gaps
GROUP BY symbol, window_start
"""

# A bar's longest silence after a merge, as (seconds, the trade that ended it): the largest of
# the stored bar's, this batch's, and the junction between the two when they do not interleave
# (negative when they do). One struct comparison: the same as a CASE over the candidates, but an
# expression Spark generates code for in milliseconds (the CASE repeated the comparison in each
# branch, and its generated code took seconds to compile on every MERGE).
_CANDIDATES = [("coalesce(t.longest_silence_s, 0)", "coalesce(t.longest_silence_end, t.first_trade_ts)"),
               ("s.longest_silence_s", "s.longest_silence_end"),
               ("(unix_micros(s.first_trade_ts) - unix_micros(t.last_trade_ts)) / 1e6", "s.first_trade_ts"),
               ("(unix_micros(t.first_trade_ts) - unix_micros(s.last_trade_ts)) / 1e6", "t.first_trade_ts")]
_LONGEST = "greatest(" + ", ".join(f"named_struct('s', CAST({gap} AS DOUBLE), 'end', {end})"
                                   for gap, end in _CANDIDATES) + ")"

# A later batch's partial bar combined with the stored one (t = table, s = this batch), in Spark SQL
# for delta-spark's MERGE.
MERGE_UPDATES = {
    "open": "CASE WHEN s.first_trade_ts < t.first_trade_ts THEN s.open ELSE t.open END",
    "close": "CASE WHEN s.last_trade_ts >= t.last_trade_ts THEN s.close ELSE t.close END",
    "high": "CASE WHEN s.high > t.high THEN s.high ELSE t.high END",
    "low": "CASE WHEN s.low < t.low THEN s.low ELSE t.low END",
    "volume": "t.volume + s.volume",
    "notional": "t.notional + s.notional",
    "vwap": "CASE WHEN t.volume + s.volume > 0 THEN (t.notional + s.notional) / (t.volume + s.volume) END",
    "trade_count": "t.trade_count + s.trade_count",
    "first_trade_ts": "CASE WHEN s.first_trade_ts < t.first_trade_ts THEN s.first_trade_ts ELSE t.first_trade_ts END",
    "last_trade_ts": "CASE WHEN s.last_trade_ts >= t.last_trade_ts THEN s.last_trade_ts ELSE t.last_trade_ts END",
    "updated_at": "s.updated_at",
    "longest_silence_s": f"{_LONGEST}.s",
    "longest_silence_end": f"{_LONGEST}.end",
}
MERGE_PREDICATE = "t.symbol = s.symbol AND t.window_start = s.window_start"


def aggregate(trades: pa.Table) -> pa.Table:
    """Partial bars of one batch's in-bar trades (columns as in tables.BARS_1M)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("trades", trades)
        result = con.execute(_AGGREGATE).arrow()
        if isinstance(result, pa.RecordBatchReader):
            result = result.read_all()
    finally:
        con.close()
    return result.select(tables.BARS_1M.schema.names).cast(tables.BARS_1M.schema)


Watermarks = dict[str, int]  # symbol -> watermark, epoch microseconds


def in_bar_mask(trades: pa.Table, watermarks: Watermarks) -> pa.Array:
    """True for trades at or after their symbol's watermark (a symbol seen first: all of them)."""
    if len(trades) == 0:
        return pa.array([], pa.bool_())
    encoded = trades["symbol"].combine_chunks().dictionary_encode()
    limits = pa.array([watermarks.get(symbol, -(2**63)) for symbol in encoded.dictionary.to_pylist()], pa.int64())
    return pc.greater_equal(trades["trade_ts"].cast(pa.int64()), limits.take(encoded.indices))


def advance(watermarks: Watermarks, trades: pa.Table, delay_s: int) -> Watermarks:
    """Watermarks after a batch: per symbol, the newest event time minus the delay, never backwards.

    A trade's event time is its trade_ts, but never after its Kafka timestamp, so a clock
    running ahead cannot push a watermark forward.
    """
    if len(trades) == 0:
        return watermarks
    event_us = pc.min_element_wise(trades["trade_ts"].cast(pa.int64()), trades["kafka_ts"].cast(pa.int64()))
    newest = pa.table({"symbol": trades["symbol"], "event_us": event_us}).group_by("symbol").aggregate(
        [("event_us", "max")])
    advanced = dict(watermarks)
    for symbol, event in zip(newest["symbol"].to_pylist(), newest["event_us_max"].to_pylist()):
        advanced[symbol] = max(advanced.get(symbol, event - delay_s * 1_000_000), event - delay_s * 1_000_000)
    return advanced

