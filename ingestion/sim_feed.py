"""Feeds the market simulator's Finnhub-format output into Kafka, live or as a backfill.

The simulator only generates; this module decides when (paced to the wall clock, or as fast
as the broker takes it for a backfill) and turns its payloads into topic records through the
same functions the live Finnhub clients use.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from tqdm import tqdm

from ingestion import metrics, records
from ingestion.simulator import MarketSimulator, SimBatch
from lakewatch.logs import event
from lakewatch.settings import Settings

log = logging.getLogger("ingestion.sim_feed")
Publish = Callable[[str, dict], None]
SOURCE = "simulator"


def publish_batch(batch: SimBatch, settings: Settings, publish: Publish) -> int:
    """Publish everything in a batch; return the number of trades."""
    topics = settings.topics
    trades = 0
    for frame in batch.trade_frames:
        for record in records.trades_from_frame(frame, settings.asset_class_of, SOURCE):
            publish(topics.trades, record)
            trades += 1
    for symbol, quote in batch.quotes:
        publish(topics.quotes, records.quote_record(symbol, settings.asset_class_of(symbol), quote, SOURCE))
    for symbol, item in batch.news:
        publish(topics.news, records.news_record(item, SOURCE, symbol))
    for symbol, kind, payload in batch.fundamentals:
        publish(topics.fundamentals, records.fundamentals_record(symbol, kind, payload, SOURCE))
    for label in batch.labels:
        publish(topics.labels, records.label_record(label))
        event(log, "anomaly injected", kind=label["kind"], symbol=label["symbol"], start_ts=label["start_ts"])
    return trades


def run_live(settings: Settings, publish: Publish, stop: threading.Event, tick: float = 0.1) -> None:
    """Simulate the market in real time until `stop` is set."""
    sim = MarketSimulator.from_settings(settings, start_ms=records.now_ms())
    metrics.SIM_RATE.set(settings.sim_rate)
    event(log, "simulator started", rate=settings.sim_rate, seed=settings.sim_seed, market_hours=settings.sim_market_hours)
    while not stop.wait(tick):
        publish_batch(sim.advance(records.now_ms()), settings, publish)


def backfill(settings: Settings, publish: Publish, days: float, rate: float | None = None,
             end_ms: int | None = None, progress: bool = True, poll: Callable[[], None] = lambda: None) -> dict:
    """Simulate `days` of history ending at `end_ms` (default now) as fast as possible.

    At the live feed's rate (settings.sim_rate), so that a model trained on the history meets
    live bars of the same size. Tests that only need rows pass a `rate` of their own.
    """
    end_ms = records.now_ms() if end_ms is None else end_ms
    start_ms = end_ms - int(days * 86_400_000)
    sim = MarketSimulator.from_settings(settings, start_ms=start_ms, rate=rate)
    step = 60_000
    totals = {"trades": 0, "labels": 0, "news": 0, "quotes": 0, "fundamentals": 0}
    started = time.monotonic()
    with tqdm(total=end_ms - start_ms, unit="ms", unit_scale=False, disable=not progress,
              desc=f"backfill {days:g} d", bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]") as bar:
        while sim.now_ms < end_ms:
            before = sim.now_ms
            batch = sim.advance(min(end_ms, before + step))
            totals["trades"] += publish_batch(batch, settings, publish)
            totals["labels"] += len(batch.labels)
            totals["news"] += len(batch.news)
            totals["quotes"] += len(batch.quotes)
            totals["fundamentals"] += len(batch.fundamentals)
            poll()
            if sim.now_ms == before:  # less than one simulator tick left
                break
            bar.update(sim.now_ms - before)
            bar.set_postfix_str(f"trades={totals['trades']:,}, anomalies={totals['labels']:,}", refresh=False)
    totals["seconds"] = round(time.monotonic() - started, 2)
    return totals
