"""The market simulator (ingestion/simulator.py): the source when no Finnhub key is set, and
the history the first model is trained on (`make backfill`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Simulator:
    sim_seed: int = 7
    # Trades/s over all symbols at mean seasonality with every market open. Live and backfilled
    # history (the first model's, `make backfill`) share it: a model trained on a slower history
    # would flag every live bar until its baseline filled with live ones (docs/model.md).
    sim_rate: float = 20.0
    sim_anomalies_per_hour: float = 1.0  # per symbol
    sim_market_hours: str = "us"  # "us": stocks trade 09:30-16:00 New York, weekdays; "always"
    sim_news_per_hour: float = 6.0  # per stock symbol
    # "clean": the five injected kinds on a calm market; "realistic" adds drifts, level shifts,
    # volatility regimes, news-led jumps, class-wide moves and microstructure noise (simulator.py).
    sim_realism: str = "clean"
