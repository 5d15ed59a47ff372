"""Simulated history as the lake would hold it, in a minute instead of five: the simulator's
trades made into 1-minute bars by the stream job's own aggregation (spark/bars.py), what it
writes for an in-order backfill, without the broker and Spark. For benchmarks and tests whose
subject is the model, not the pipeline (the pipeline's own tests take the whole way)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ingestion.simulator import MarketSimulator
from lakewatch import tables
from spark.bars import aggregate


def simulated_history(settings, end_ms: int, hours: float, rate: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, labels) of `hours` of simulated market up to end_ms; the bars are made by the
    stream job's own aggregation (spark/bars.py), the trades' order standing in for offsets."""
    sim = MarketSimulator.from_settings(settings, start_ms=end_ms - int(hours * 3_600_000), rate=rate)
    trades, labels = [], []
    while sim.now_ms < end_ms:
        before = sim.now_ms
        batch = sim.advance(min(end_ms, before + 600_000))
        trades += [(t["s"], t["p"], t["v"], t["t"]) for frame in batch.trade_frames for t in frame["data"]]
        labels += batch.labels
        if sim.now_ms == before:
            break
    symbol, price, volume, ts_ms = zip(*trades)
    bars = aggregate(pa.table({
        "symbol": symbol, "asset_class": [settings.asset_class_of(s) for s in symbol], "price": price,
        "volume": volume, "trade_ts": pa.array(np.array(ts_ms, dtype="int64") * 1000, tables.TS),
        "kafka_offset": np.arange(len(trades))})).to_pandas()
    labels = pd.DataFrame(labels)
    for column in ("start_ts", "end_ts"):  # epoch ms, as published on market.labels
        labels[column] = pd.to_datetime(labels[column], unit="ms", utc=True)
    return bars, labels
