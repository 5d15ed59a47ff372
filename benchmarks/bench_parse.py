"""Parser benchmark: what typing and checking a micro-batch costs on the stream job's driver.

Builds one batch of trades as the stream job receives it (Kafka columns, JSON values; one record
in a thousand malformed, as the job sees live), then times, alternating, median of N runs:
  - the reference: DuckDB parsing the same values into the trades structure and nothing else
    (json_valid, then json_transform, with the parser's thread count), the floor any parser pays;
  - spark/parse.py's Parser.parse: every check of the trades contract (types, ranges, the
    symbol's form, text lengths), rejects with their reasons.
Prints both, rows per second and the ratio to the reference.
Usage: python benchmarks/bench_parse.py [--trades 200000] [--runs 7]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from lakewatch import settings as settings_module
from lakewatch import tables
from spark.parse import Parser, topic_specs


def trades_batch(n: int, symbols: tuple[str, ...], seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    values = []
    for i in range(n):
        if i % 1000 == 999:
            values.append('{"symbol": "AAPL", "price": "not a number"')
            continue
        symbol = rng.choice(symbols)
        values.append(json.dumps({"symbol": symbol, "asset_class": "crypto" if ":" in symbol else "stocks",
                                  "price": round(rng.uniform(1, 500), 4), "volume": rng.randint(1, 500),
                                  "trade_ts": now_ms - rng.randint(0, 60_000), "conditions": ["1"],
                                  "source": "bench", "ingested_at": now_ms}))
    kafka_ts = datetime.now(timezone.utc)
    return pa.table({"topic": ["market.trades"] * n, "partition": pa.array([i % 3 for i in range(n)], pa.int32()),
                     "offset": pa.array(range(n), pa.int64()), "key": ["k"] * n, "value": values,
                     "timestamp": pa.array([kafka_ts] * n, tables.TS)})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    settings = settings_module.load()
    specs = topic_specs(settings)
    trades_spec = next(s for s in specs if s.table.name == "trades")
    p = Parser(specs)
    batch = trades_batch(args.trades, settings.symbols)
    con = duckdb.connect(config={"threads": 2})  # as the Parser's own connection
    con.register("batch", batch)
    bare = (f"SELECT CASE WHEN json_valid(value) THEN json_transform(value, '{trades_spec.json_structure}') END "
            "AS r FROM batch")

    def reference():
        return con.execute(bare).to_arrow_table()

    timings = {"reference (json_transform only)": [], "Parser.parse (the trades contract)": []}
    parsed = p.parse(batch)  # warm both paths once
    reference()
    for _ in range(args.runs):
        for name, run in zip(timings, (reference, lambda: p.parse(batch))):
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    print(f"{args.trades:,} trades, {len(parsed.rejects):,} rejected, median of {args.runs} runs")
    base = statistics.median(timings["reference (json_transform only)"])
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        print(f"  {name:<38} {median * 1000:8.1f} ms  {args.trades / median:>10,.0f} rows/s  x{median / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
